"""Tables and figures of a `goodhart policy pareto` grid for its docs page (issue 17): every cell's gold at
one shared d on the reference pool's units, paired against the Best-of-n curve of the same prompts and
pooled over seeds (SPEC §11); every run's summary (KL schedule, peak, R_rl fit); the KL schedule figure;
each run's wall time read from its files."""

from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from goodhart.bon.prompt_stats import pooled
from goodhart.report.matched import common_d, curve, gold_at, matched


def _ci(est: tuple[float, float, float]) -> str:
    return f"{est[0]:+.2f} [{est[1]:+.2f}, {est[2]:+.2f}]"


def cell_curves(rows: list[dict]) -> tuple[dict, dict]:
    """({cell: {seed: curve}} of the policy runs, {name: curve} of the reference's Best-of-n rows)."""
    runs, bon = defaultdict(lambda: defaultdict(list)), defaultdict(list)
    for r in rows:
        if r.get("study") == "policy":
            (bon[r["cell"]] if r["method"] == "bon" else runs[r["cell"]][r["seed"]]).append(r)
    return ({c: {s: curve(pts) for s, pts in sorted(by.items())} for c, by in sorted(runs.items())},
            {name: curve(pts) for name, pts in bon.items()})


def shared_d(cells: dict, bon: dict) -> float:
    """The largest d that every run of every cell and the Best-of-n curve reach: one point on the axis
    where all of them are measured."""
    return common_d(*bon.values(), *(c for by in cells.values() for c in by.values()))


def matched_markdown(rows: list[dict]) -> tuple[list[str], float]:
    """One line per cell: its d range per seed, its gold at the shared d per seed, and gold(cell) −
    gold(Best-of-n) there, paired over prompts within a seed and pooled over seeds; and the shared d."""
    cells, bon = cell_curves(rows)
    dstar = shared_d(cells, bon)
    lines = [f"| cell | d reached, per seed | gold at d = {dstar:.2f}, per seed | − Best-of-n at d = {dstar:.2f}, "
             "seeds pooled |", "|---|---|---|---|"]
    for cell, by in cells.items():
        ref = bon.get("bon" + (cell[cell.index("@"):] if "@" in cell else ""), bon.get("bon"))
        diffs = [matched(c, ref, dstar, seed=s) for s, c in by.items()]
        est = pooled([x["diff"] for x in diffs], [x["diff_lo"] for x in diffs], [x["diff_hi"] for x in diffs])
        lines.append(f"| {cell} | {', '.join(f'{c[0][-1]:.2f}' for c in by.values())} | "
                     f"{', '.join(f'{gold_at(c, dstar).mean():+.2f}' for c in by.values())} | {_ci(est)} |")
    lines.append(f"| Best-of-n (reference pool) | {bon['bon'][0][-1]:.2f} | {gold_at(bon['bon'], dstar).mean():+.2f} "
                 "| 0 |")
    return lines, dstar


def _fit(r: dict, k: str) -> str:
    if r.get(f"fit_{k}") is None:
        return "–"
    lo, hi = r.get(f"fit_{k}_ci") or (None, None)
    return f"{r[f'fit_{k}']:+.2f}" + (f" [{lo:+.2f}, {hi:+.2f}]" if lo is not None else "")


def run_markdown(rows: list[dict], out: Path) -> list[str]:
    """One line per run: final KL, the KL schedule's exponent, peak and final gold, R_rl fit, wall time."""
    lines = ["| run | final KL | KL ∝ step^p | peak gold (step) | final gold | α_rl | β_rl | wall time |",
             "|---|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if r.get("study") == "policy_summary"):
        p = r.get("kl_step_exponent")
        wall = run_wall_s(out / r["run"])
        lines.append(f"| {r['run']} | {r['final_kl']:.2f} | {'–' if p is None else f'{p:.2f}'} | "
                     f"{r['peak_gold']:+.2f} ({r['peak_step']}) | {r['gold_at_max_n']:+.2f} | {_fit(r, 'alpha')} | "
                     f"{_fit(r, 'beta')} | {_duration(wall)} |")
    return lines


def _duration(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def run_wall_s(run: Path) -> float | None:
    """Seconds from a run's config.yaml (written when it starts) to its final policy's weights (written
    last); None for a run without them."""
    weights = sorted((run / "policy").glob("*.safetensors")) if (run / "policy").is_dir() else []
    if not (run / "config.yaml").is_file() or not weights:
        return None
    return max(w.stat().st_mtime for w in weights) - (run / "config.yaml").stat().st_mtime


def grid_wall_s(runs: list[Path]) -> float | None:
    """Seconds from the first of `runs` to start (its config.yaml) to the last to finish (its final weights):
    the grid's wall time when runs overlap (policy pareto's workers), interruptions included; None when a
    run lacks either file."""
    starts, ends = [], []
    for run in runs:
        wall = run_wall_s(run)
        if wall is None:
            return None
        starts.append((run / "config.yaml").stat().st_mtime)
        ends.append(starts[-1] + wall)
    return max(ends) - min(starts) if runs else None


def plot_kl_schedule(rows: list[dict]) -> Figure:
    """KL(π‖π_ref) against training step per run (log-log): Gao et al. find it roughly quadratic for RL."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    runs = defaultdict(list)
    for r in rows:
        if r.get("study") == "policy" and r["method"] != "bon" and r["step"] > 0 and r["kl"] > 0:
            runs[(r["cell"], r["seed"])].append((r["step"], r["kl"]))
    colours = {c: f"C{i}" for i, c in enumerate(sorted({c for c, _ in runs}))}
    for (cell, seed), pts in sorted(runs.items()):
        s, k = np.array(sorted(pts)).T
        ax.plot(s, k, "o-" if seed == min(x for c, x in runs if c == cell) else "s--", ms=3, color=colours[cell],
                label=f"{cell}, seed {seed}")
    ax.set(xscale="log", yscale="log", xlabel="training step", ylabel="KL(π ‖ π_ref)  [k3, held-out prompts]")
    ax.set_title("KL schedule per run", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, ncol=2)
    return fig
