"""Write the measured part of a study's docs page from the study directory alone.

    python scripts/build_study_doc.py runs/study-gao --page docs/study.md --img docs/img --prefix study-gao

Everything below the marker line of PAGE is replaced (the hand-written setup above it is kept; a page
without the marker gets one at its end): the claims table of `goodhart claims` with its rule, a table of
every RM size × data size pooled over seeds (the same pooling as the claims: seeds resampled, each drawn
from its own prompt-bootstrap interval), the per-seed values, the time the study took, and small PNG
figures written to IMG/<prefix>_*.png. No sentence in the generated part says more than a table row.
"""

import argparse
import io
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from goodhart.commands.claims import _cells, _fit_key, _pool_key, claims_markdown, claims_table
from goodhart.errors import GoodhartError
from goodhart.report.study_plots import plot_gao
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


def _errorbar(ax, xs, ests, **kw):
    y = np.array([e[0] for e in ests])
    err = [y - [e[1] for e in ests], [e[2] for e in ests] - y]
    ax.errorbar(xs, y, yerr=err, fmt="o-", capsize=3, **kw)


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


def generated(study: Path, img: Path, prefix: str, rel: str) -> str:
    run = RunDir(study)
    rows = run.results()
    claims = claims_table(rows)  # refuses a directory without study cells before anything is written
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
            "", "## Time", "", _time(run, rows), ""]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study")
    p.add_argument("--page", required=True)
    p.add_argument("--img", required=True)
    p.add_argument("--prefix", required=True)
    a = p.parse_args(argv)
    study, page, img = Path(a.study), Path(a.page), Path(a.img)
    if not (study / "results.jsonl").is_file():
        print(f"error: {study} has no results.jsonl; point this at a `goodhart study` directory", file=sys.stderr)
        return 2
    old = page.read_text() if page.is_file() else ""
    head = old.split(MARKER)[0].rstrip() + "\n\n" if old else ""
    try:
        text = generated(study, img, a.prefix, os.path.relpath(img, page.parent))
    except GoodhartError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    atomic_write_text(page, head + text)
    print(f"wrote {page} and {img}/{a.prefix}_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
