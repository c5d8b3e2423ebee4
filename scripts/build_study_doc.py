"""Write the measured part of a study's (or an RM suite's) docs page from its run directory alone.

    python scripts/build_study_doc.py runs/study-gao --page docs/study-gao.md --img docs/img --prefix study-gao
    python scripts/build_study_doc.py runs/study-lab --smaller-policy runs/study-lab-small --page docs/study.md \\
        --img docs/img --prefix study-lab
    python scripts/build_study_doc.py runs/rm-suite-lab --page docs/rm_suite.md --img docs/img --prefix rm-suite-lab
    python scripts/build_study_doc.py runs/pareto-lab --page docs/policy_pareto.md --img docs/img --prefix pareto-lab

Everything below the marker line of PAGE is replaced (the hand-written setup above it is kept; a page
without the marker gets one at its end): the claims table of `goodhart claims` with its rule, a table of
every RM size × data size pooled over seeds (the same pooling as the claims: seeds resampled, each drawn
from its own prompt-bootstrap interval), the per-seed values, the time the study took, and small PNG
figures written to IMG/<prefix>_*.png. No sentence in the generated part says more than a table row.
For a `goodhart rm suite` directory: the setup (from its config.yaml and rows), the claims table, the
tables pooled over seeds (accuracies, McNemar tests, paired Best-of-n differences), three figures and the time.
For a `goodhart policy pareto` directory: the claims table, every cell's gold at one shared d against the
Best-of-n curve (paired, seeds pooled), every run's summary and wall time, the one-axis figure and the KL schedule.
With --smaller-policy (a study of the same grid on a smaller policy, `--world lab-small`): the claims table gains
the policy-size rows, and a section compares the two policies' Best-of-n curves in raw gold units.
"""

import argparse
import io
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml
from matplotlib.figure import Figure

from goodhart.commands.claims import _cells, _fit_key, _pool_key, claims_markdown, claims_table
from goodhart.commands.size_claims import policy_name, policy_size_rows, pool_facts
from goodhart.errors import GoodhartError
from goodhart.report.pareto_tables import (
    grid_wall_s,
    matched_markdown,
    plot_kl_schedule,
    run_markdown,
    run_wall_s,
)
from goodhart.report.plots import plot_bon, plot_policy, plot_suite_accuracy
from goodhart.report.study_plots import plot_gao, plot_policy_size
from goodhart.report.suite_tables import pooled_bon_diffs, pooled_suite, suite_markdown
from goodhart.runs import RunDir, atomic_write_bytes, atomic_write_text, read_jsonl

MARKER = "<!-- everything below is written by scripts/build_study_doc.py from the study's results; do not edit -->"
DPI = 72


def _ci(est, fmt: str = "+.2f") -> str:
    return "–" if est is None else f"{est[0]:{fmt}} [{est[1]:{fmt}}, {est[2]:{fmt}}]"


def pooled_cells(groups: dict) -> list[dict]:
    """One record per (RM size, data size): pooled estimates with intervals and the per-seed values."""
    out = []
    for (size, data), g in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[1][0]["rm_params"])):
        g = sorted(g, key=lambda r: r["seed"])
        out.append({"size": size, "data": data, "params": g[0]["rm_params"], "seeds": [r["seed"] for r in g],
                    "acc": [r["val_acc"] for r in g], "alpha": _fit_key(g, "alpha"), "beta": _fit_key(g, "beta"),
                    "peak": _pool_key(g, "peak_gold", "peak_gold_lo", "peak_gold_hi"),
                    "fall": _pool_key(g, "fall", "fall_lo", "fall_hi"), "peak_n": [r["peak_n"] for r in g],
                    "alpha_seed": [r.get("fit_alpha") for r in g], "fall_seed": [r.get("fall") for r in g],
                    "proxy_max": float(np.mean([r["proxy_at_max_n"] for r in g])),
                    "chance_p": float(np.median([r["chance_p"] for r in g]))})
    return out


def _seq(values, fmt: str) -> str:
    return ", ".join("–" if v is None else format(v, fmt) for v in values)


def cell_table(cells: list[dict]) -> list[str]:
    lines = ["| RM | params | comparisons | val acc (seeds) | median p(chance) | α | β | peak gold | peak n (seeds) "
             "| gold(peak) − gold(max n) | proxy at max n |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        lines.append(f"| {c['size']} | {c['params'] / 1e6:.2g}M | {c['data']} | {_seq(c['acc'], '.3f')} | "
                     f"{c['chance_p']:.2g} | {_ci(c['alpha'], '.3f')} | {_ci(c['beta'], '+.3f')} | {_ci(c['peak'])} | "
                     f"{_seq(c['peak_n'], 'd')} | {_ci(c['fall'])} | {c['proxy_max']:+.2f} |")
    return lines


def seed_table(cells: list[dict]) -> list[str]:
    lines = ["| RM | comparisons | α per seed | fall per seed |", "|---|---|---|---|"]
    return lines + [f"| {c['size']} | {c['data']} | {_seq(c['alpha_seed'], '.3f')} | {_seq(c['fall_seed'], '+.2f')} |"
                    for c in cells]


def _errorbar(ax, xs, ests, fmt: str = "o-", **kw):
    y = np.array([e[0] for e in ests])
    err = [y - [e[1] for e in ests], [e[2] for e in ests] - y]
    ax.errorbar(xs, y, yerr=err, fmt=fmt, capsize=3, **kw)


def plot_pooled(cells: list[dict]) -> Figure:
    """α and β against RM parameters (one line per data size), peak gold against data size (one line per
    RM size; hollow: median p(chance) ≥ 0.05); every bar is the seed-pooled 95% interval."""
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    by_data, by_size = defaultdict(list), defaultdict(list)
    for c in cells:
        by_data[c["data"]].append(c)
        by_size[c["size"]].append(c)
    for ax, key, label in ((axes[0], "alpha", "α (BoN fit)"), (axes[1], "beta", "β (BoN fit)")):
        for i, (data, cs) in enumerate(sorted(by_data.items())):
            cs = [c for c in cs if c[key] is not None]
            if cs:
                _errorbar(ax, [c["params"] for c in cs], [c[key] for c in cs], color=f"C{i}", label=f"{data} comp.")
        ax.set(xscale="log", xlabel="RM parameters (non-embedding)", ylabel=label)
        ax.axhline(0, color="0.8", lw=0.8)
        ax.legend(fontsize=7)
    for i, (size, cs) in enumerate(sorted(by_size.items(), key=lambda kv: kv[1][0]["params"])):
        _errorbar(axes[2], [c["data"] for c in cs], [c["peak"] for c in cs], color=f"C{i}", label=size)
        for c in cs:
            if c["chance_p"] >= 0.05:
                axes[2].plot([c["data"]], [c["peak"][0]], "o", color="white", mec=f"C{i}", ms=7, zorder=5)
    axes[2].set(xscale="log", xlabel="training comparisons", ylabel="peak gold (normalised)")
    datas = sorted(by_data)
    axes[2].set_xticks(datas, [str(d) for d in datas])
    axes[2].minorticks_off()
    axes[2].legend(fontsize=7, title="RM size", title_fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle("Seed-pooled 95% intervals (prompts and seeds resampled)", fontsize=10)
    return fig


def _png(fig: Figure, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write_bytes(path, buf.getvalue())


def _time(run: RunDir, rows: list[dict]) -> str:
    metrics = read_jsonl(run.file("metrics.jsonl")) if run.file("metrics.jsonl").is_file() else []
    total = sum(m.get("time/total_s", 0) for m in metrics if m.get("phase") == "summary")
    train = sum(r.get("train_s", 0) for r in rows if r.get("study") == "study_cell" and r.get("aggregation") == "single")
    return (f"Time: {total / 60:.0f} min in `goodhart study` (summed over invocations; sampling, RM training, scoring "
            f"and bootstrap), of which {train / 60:.0f} min training RMs.")


def _suite_setup(run: RunDir, rows: list[dict]) -> list[str]:
    """The suite's setup, read from the config.yaml it ran with and from its rows (never typed by hand)."""
    cfg = yaml.safe_load(run.file("config.yaml").read_text())
    suite = [r for r in rows if r.get("study") == "rm_suite" and r["kind"] == "member"]
    tests = [r for r in rows if r.get("study") == "rm_suite_test" and r.get("b") == "average member"]
    pairs = {k: sorted({t["pairs"] for t in tests if t["set"] == k}) for k in ("val", "ood")}
    d, size = cfg["data"], cfg.get("rm_size") or {}
    flips = sorted({(r["label_noise"], r["flipped_pairs"], r["train_pairs"]) for r in suite})
    return [
        f"- world `{cfg['world']}`; seeds {', '.join(map(str, cfg['seeds']))} (each draws its comparisons, its "
        f"shared run, members and independent members); label noise ρ ∈ {{{', '.join(format(x, 'g') for x in cfg['noise_levels'])}}}",
        f"- training comparisons: within-prompt pairs of {d['train_prompts']} prompts × {d['train_samples_per_prompt']} "
        f"policy samples, gold-labelled, at most {cfg['rm']['max_pairs']}; flipped/train per ρ: "
        + "; ".join(f"ρ {r:g}: {f}/{t}" for r, f, t in dict.fromkeys(flips)),
        f"- clean validation pairs per replicate: {', '.join(map(str, pairs['val']))}; OOD pairs ({cfg.get('ood_prompts')} "
        f"held-out-domain prompts): {', '.join(map(str, pairs['ood'])) or 'none'}",
        f"- Best-of-n pool: {d['eval_prompts']} prompts × {d['eval_samples_per_prompt']} samples, shared by every "
        f"replicate; {cfg['bon']['bootstrap']} prompt-bootstrap resamples",
        f"- members: {cfg['members']} per replicate ({', '.join(f'{k} {v}' for k, v in size.items() if v is not None) or 'the full backbone'}), fine-tuned "
        f"{cfg['member_epochs']} epoch(s) from the {cfg['rm']['epochs']}-epoch shared run's checkpoints with lr "
        f"{cfg['member_lrs']} and dropout {cfg['member_dropouts']}; aggregates of the first M ∈ {cfg['warm_sizes']}; "
        f"{cfg.get('independent', 0)} independent members (own head init and data order, no shared run)",
    ]


def plot_suite_bon(rows: list[dict]) -> Figure:
    """Per ρ: Best-of-n gold at each RM's peak (seed-pooled 95% intervals) and the paired differences."""
    pooled, diffs = pooled_suite(rows), pooled_bon_diffs(rows)
    fig = Figure(figsize=(11, 3.6 * len(pooled)), layout="constrained")
    axes = fig.subplots(len(pooled), 2, squeeze=False, width_ratios=[2.2, 1])
    for (ax, dx), (rho, recs) in zip(axes, pooled.items(), strict=True):
        ests = [r["bon"] for r in recs]
        _errorbar(ax, np.arange(len(recs)), [(e[0], e[1] if e[1] is not None else e[0], e[2] if e[2] is not None
                                              else e[0]) for e in ests], fmt="o", color="C0")
        ax.set_xticks(range(len(recs)), [r["reward_model"] for r in recs], rotation=45, ha="right", fontsize=8)
        ax.set(ylabel="gold at its peak (normalised)", title=f"Best-of-n, ρ = {rho:g}")
        mine = [d for d in diffs if d["label_noise"] == rho]
        _errorbar(dx, np.arange(len(mine)), [d["diff"] for d in mine], fmt="o", color="C1")
        dx.set_xticks(range(len(mine)), [f"{d['a']} − {d['b']} ({'peak' if d['stat'] == 'max' else 'max n'})"
                                         for d in mine], rotation=45, ha="right", fontsize=8)
        dx.axhline(0, color="0.5", lw=0.8)
        dx.set(ylabel="paired gold difference", title="same prompts, paired")
        for a in (ax, dx):
            a.grid(alpha=0.3)
    return fig


def suite_generated(run: RunDir, rows: list[dict], img: Path, prefix: str, rel: str) -> str:
    claims = claims_table(rows)
    suite = [r for r in rows if r.get("study") == "rm_suite"]
    rho, seed = max(r["label_noise"] for r in suite), min(r["seed"] for r in suite)
    img.mkdir(parents=True, exist_ok=True)
    _png(plot_suite_accuracy(pooled_suite(rows)), img / f"{prefix}_accuracy.png")
    _png(plot_suite_bon(rows), img / f"{prefix}_bon.png")
    _png(plot_bon([r for r in rows if r.get("method") == "bon" and r.get("label_noise") == rho and r.get("seed") == seed]),
         img / f"{prefix}_curves.png")
    done = [r for r in rows if r.get("study") == "rm_suite_done"]
    metrics = read_jsonl(run.file("metrics.jsonl")) if run.file("metrics.jsonl").is_file() else []
    total = sum(m.get("time/total_s", 0) for m in metrics if m.get("phase") == "summary")
    reps = ", ".join(f"{r['replicate']} {r['replicate_s'] / 60:.1f}" for r in done)
    secs = [r["replicate_s"] for r in done] or [0.0]
    out = [MARKER, "", "## Setup (from the run's config.yaml and rows)", ""] + _suite_setup(run, rows)
    out += ["", "#" + claims_markdown(claims).rstrip(), "", "## Pooled over seeds", "",
            "Accuracies: mean over seeds with a 95% t interval over seeds; Best-of-n: seeds pooled with each seed's "
            "prompt-bootstrap interval (SPEC §11); *average member*: the members' mean per seed; *best single*: the "
            "member with the best clean validation accuracy, picked on those same pairs (optimistic).", "",
            suite_markdown(rows).rstrip(), "", "## Figures", "",
            f"![accuracies]({rel}/{prefix}_accuracy.png)", "",
            "Clean, flipped (agreement with the wrong label, lower is better) and OOD accuracy per reward model, "
            "mean over seeds with t intervals.", "", f"![Best-of-n]({rel}/{prefix}_bon.png)", "",
            "Left: Best-of-n gold at each RM's own peak, seed-pooled 95% intervals; right: the paired differences "
            "of the table above.", "", f"![curves]({rel}/{prefix}_curves.png)", "",
            f"Best-of-n gold against d for every RM of one replicate (ρ = {rho:g}, seed {seed}; members grey).", "",
            "## Time", "", f"Replicates (wall time of each): {reps} min; sum {sum(secs) / 60:.0f} min, median "
            f"{np.median(secs) / 60:.1f} min. Invocations that ran to their end logged {total / 60:.0f} min in all (an "
            "interrupted invocation logs no total; sampling, cached after the first invocation, is outside the "
            "replicates).", ""]
    return "\n".join(out)


def _workers(run: RunDir) -> str:
    """How the grid's runs were spread: "1 run" at a time in one process, N worker processes (grids run before
    the executor), or Ray tasks of ray.cpus_per_cell CPUs."""
    cfg = (yaml.safe_load((run.path / "config.yaml").read_text()) if (run.path / "config.yaml").is_file() else {}) or {}
    if cfg.get("executor") == "ray":
        return f"Ray tasks of {float(cfg.get('ray', {}).get('cpus_per_cell', 1)):g} CPU"
    n = int(cfg.get("workers", 1))
    return f"{n} run" + ("s" if n > 1 else "")


def pareto_generated(run: RunDir, rows: list[dict], img: Path, prefix: str, rel: str) -> str:
    claims = claims_table(rows)
    seed = min(r["seed"] for r in rows if r.get("study") == "policy_summary")
    img.mkdir(parents=True, exist_ok=True)
    _png(plot_policy([r for r in rows if r.get("study") == "policy" and (r["method"] == "bon" or r["seed"] == seed)]),
         img / f"{prefix}_policy.png")
    _png(plot_kl_schedule(rows), img / f"{prefix}_kl.png")
    table, dstar = matched_markdown(rows)
    names = [r["run"] for r in rows if r.get("study") == "policy_summary"]
    walls = [w for w in (run_wall_s(run.path / n) for n in names) if w]
    span = grid_wall_s([run.path / n for n in names])
    out = [MARKER, "", "#" + claims_markdown(claims).rstrip(), "", "## Every cell at one d", "",
           f"Gold (normalised on the reference pool) at d = {dstar:.2f}, the largest d that every run and the "
           "Best-of-n curve reach, read off each prompt's curve by linear interpolation in d; the last column pairs "
           "each run with the Best-of-n curve on the same evaluation prompts (95% prompt bootstrap within a seed, "
           "seeds pooled, SPEC §11).", ""] + table
    out += ["", "## Every run", "", "KL by k3 on the held-out prompts; p: slope of log KL on log step; R_rl(d) = "
            "d(α − β log d) fitted to the per-prompt curves (95% prompt-bootstrap intervals); wall time from the run's "
            "files (config written → final weights written).", ""] + run_markdown(rows, run.path)
    out += ["", "## Figures", "", f"![one axis]({rel}/{prefix}_policy.png)", "",
            f"Left: gold (solid, 95% prompt intervals) and proxy (dashed) against d for every run of seed {seed} and the "
            "reference pool's Best-of-n curve (grey, KL bound); right: gold against proxy (Gao et al. Fig. 10).", "",
            f"![KL schedule]({rel}/{prefix}_kl.png)", "", "KL against step, every run (log-log).", "",
            "## Time", "", f"{len(walls)} runs, {sum(walls) / 60:.0f} min in all (median {np.median(walls or [0]) / 60:.1f} "
            "min per run), from the runs' files" + ("" if span is None else
            f"; {span / 60:.0f} min from the first run's start to the last run's end ({_workers(run)} at a time, "
            "pauses included)") + "; the reference pool is sampled once and cached.", ""]
    return "\n".join(out)


def size_section(rows: list[dict], small: list[dict], img: Path, prefix: str, rel: str, small_run: RunDir) -> list[str]:
    """The policy-size section: the two policies' curves in raw gold, and what each study took."""
    names = [policy_name(pool_facts(r)) for r in (rows, small)]
    _png(plot_policy_size(dict(zip(names, (rows, small), strict=True))), img / f"{prefix}_policy_size.png")
    return ["", "## Policy size", "", f"The same grid's shared cells on a smaller policy ({names[1]}, "
            f"`{small_run.path.name}`; the same gold, proxy backbone and prompts): the policy-size rows of the claims "
            "table above.", "", f"![Best-of-n by policy size]({rel}/{prefix}_policy_size.png)", "",
            "Best-of-n gold gain of the full-size proxy over each policy's own mean, raw gold units, mean over seeds; "
            "dotted: each policy's gold-selected ceiling.", "", "Smaller policy's study: " + _time(small_run, small)]


def generated(study: Path, img: Path, prefix: str, rel: str, smaller: Path | None = None) -> str:
    run = RunDir(study)
    rows = run.results()
    if any(r.get("study") == "policy_summary" for r in rows):
        return pareto_generated(run, rows, img, prefix, rel)
    if not any(r.get("study") == "study_cell" for r in rows) and any(r.get("study") == "rm_suite" for r in rows):
        return suite_generated(run, rows, img, prefix, rel)
    claims = claims_table(rows)  # refuses a directory without study cells before anything is written
    small = RunDir(smaller).results() if smaller else None
    if small is not None:
        if not _cells(small):
            raise GoodhartError(f"{smaller} has no Best-of-n study cells; --smaller-policy takes a `goodhart study`")
        claims += policy_size_rows(rows, small)
    cells = pooled_cells(_cells(rows))
    img.mkdir(parents=True, exist_ok=True)
    seeds = sorted({s for c in cells for s in c["seeds"]})
    _png(plot_gao(rows), img / f"{prefix}_gao.png")  # the headline slice: lowest seed
    _png(plot_pooled(cells), img / f"{prefix}_pooled.png")
    out = [MARKER, "", "#" + claims_markdown(claims).rstrip()]  # the table `goodhart claims` writes, one level down
    out += ["", f"## Every cell, pooled over seeds {', '.join(map(str, seeds))}", "",
            "Intervals: 95%, prompts resampled within each seed, seeds resampled (SPEC §11). A fall is "
            "`gold(peak) − gold(max n)`, paired on the same prompts.", ""]
    out += cell_table(cells) + ["", "Per seed:", ""] + seed_table(cells)
    out += ["", "## Figures", "", f"![Best-of-n curves, seed {seeds[0]}]({rel}/{prefix}_gao.png)", "",
            f"Best-of-n gold (solid, prompt-bootstrap band) and proxy (dashed) against d, seed {seeds[0]}, one panel "
            "per data size; dotted: the fit d(α − βd); grey: gold-selected ceiling.", "",
            f"![α, β and peak gold, pooled]({rel}/{prefix}_pooled.png)", "",
            "α and β against RM size, peak gold against data size (hollow: not better than chance), seed-pooled.",
            "", "## Time", "", _time(run, rows)]
    if small is not None:
        out += size_section(rows, small, img, prefix, rel, RunDir(smaller))
    return "\n".join(out + [""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study")
    p.add_argument("--page", required=True)
    p.add_argument("--img", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--smaller-policy", type=Path, help="a `goodhart study` of the same grid on a smaller policy")
    a = p.parse_args(argv)
    study, page, img = Path(a.study), Path(a.page), Path(a.img)
    for path in (study, a.smaller_policy):
        if path is not None and not (path / "results.jsonl").is_file():
            print(f"error: {path} has no results.jsonl; point this at a `goodhart study` directory", file=sys.stderr)
            return 2
    old = page.read_text() if page.is_file() else ""
    head = old.split(MARKER)[0].rstrip() + "\n\n" if old else ""
    try:
        text = generated(study, img, a.prefix, os.path.relpath(img, page.parent), a.smaller_policy)
    except GoodhartError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    atomic_write_text(page, head + text)
    print(f"wrote {page} and {img}/{a.prefix}_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
