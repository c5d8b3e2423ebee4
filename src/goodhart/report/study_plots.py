"""Figures of a `goodhart study` (Gao et al. 2023 figs. 1–4 style): results rows in, Figure out."""

from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

from goodhart.bon.fits import chance_threshold, gao_predict, log_trend


def curve_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("study") == "study"]


def cell_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("study") == "study_cell"]


def headline(rows: list[dict]) -> dict:
    """The slice most figures use: single RMs (or the first aggregation), lowest noise, first seed."""
    cells = [r for r in cell_rows(rows) if r.get("rm_size") is not None and r.get("method", "bon") == "bon"]
    if not cells:
        return {}
    aggs = [r["aggregation"] for r in cells]
    return {"aggregation": "single" if "single" in aggs else aggs[0],
            "label_noise": min(r["label_noise"] for r in cells), "seed": min(r["seed"] for r in cells),
            "data_size": max(r["data_size"] for r in cells)}


def _match(r: dict, keys: dict, skip: tuple[str, ...] = ()) -> bool:
    return all(r.get(k) == v for k, v in keys.items() if k not in skip)


def _by_cell(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups = defaultdict(list)
    for r in curve_rows(rows):
        groups[(r["cell"], r["aggregation"])].append(r)
    return {k: sorted(v, key=lambda r: r.get("n", r.get("step", 0))) for k, v in groups.items()}


def stored_fits(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """The fit each study cell stored (`fit_alpha`, `fit_beta`, their intervals, `fit_form`) by (cell,
    aggregation); plots draw these and never refit a curve."""
    return {(r["cell"], r["aggregation"]): r for r in cell_rows(rows) if r.get("fit_alpha") is not None}


def fit_line(fit: dict | None, d) -> np.ndarray | None:
    """The stored fit's R(d) at d, or None when the cell has no fit."""
    return None if fit is None else gao_predict(fit["fit_form"], np.asarray(d, dtype=np.float64), fit["fit_alpha"],
                                                fit["fit_beta"])


def _sizes(rows: list[dict]) -> list[str]:
    params = {r["rm_size"]: r["rm_params"] for r in cell_rows(rows) if r.get("rm_size") is not None}
    return sorted(params, key=params.get)


def _axes(fig: Figure, title: str, xlabel: str, ylabel: str):
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return ax


D_LABEL = "d = sqrt(KL)  [nats^½]"
R_LABEL = "reward (normalised: initial policy 0, std 1)"


def plot_gao(rows: list[dict]) -> Figure:
    """Gold (solid) and proxy (dashed) Best-of-n vs d, one colour per RM size, fits dotted, oracle grey;
    one panel per training-data size (headline aggregation, noise and seed)."""
    keys = headline(rows) | {"method": "bon"}
    curves = _by_cell(rows)
    datas = sorted({c[0]["data_size"] for c in curves.values() if c[0].get("rm_size") is not None}) or [None]
    cols = min(4, len(datas))
    nrows = -(-len(datas) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False, sharey=True).ravel()
    oracle = curves.get(("oracle", "gold"))
    fits = stored_fits(rows)
    for ax, data in zip(axes, datas, strict=False):
        ax.set_title(f"{data} comparisons", fontsize=9)
        ax.grid(alpha=0.3)
        ax.axhline(0, color="0.8", lw=0.8)
        for i, size in enumerate(_sizes(rows)):
            for (cell, agg), curve in curves.items():
                r0 = curve[0] | {"aggregation": agg}
                if r0.get("rm_size") != size or r0["data_size"] != data or not _match(r0, keys, skip=("data_size",)):
                    continue
                d = [r["d"] for r in curve]
                ax.plot(d, [r["gold"] for r in curve], "-", color=f"C{i}", lw=1.8,
                        label=f"{size} ({curve[0]['rm_params'] / 1e6:.2g}M)")
                ax.fill_between(d, [r["gold_lo"] for r in curve], [r["gold_hi"] for r in curve], color=f"C{i}",
                                alpha=0.1, lw=0)
                ax.plot(d, [r["proxy"] for r in curve], "--", color=f"C{i}", lw=1)
                line = fit_line(fits.get((cell, agg)), d)
                if line is not None:
                    ax.plot(d, line, ":", color=f"C{i}", lw=1.2)
        if oracle:
            ax.plot([r["d"] for r in oracle], [r["gold"] for r in oracle], "-", color="0.6", lw=0.8, label="gold-selected")
        ax.set_xlabel(D_LABEL, fontsize=8)
    for ax in axes[len(datas):]:
        ax.set_visible(False)
    axes[0].set_ylabel(R_LABEL, fontsize=8)
    axes[0].legend(fontsize=7, loc="upper left", title="RM size (non-embedding)", title_fontsize=7)
    fig.suptitle(f"Best-of-n: gold (solid, 95% band), proxy (dashed), fit d(α − βd) (dotted); "
                 f"ρ = {keys.get('label_noise', 0):g}, {keys.get('aggregation', 'single')}", fontsize=10)
    return fig


def size_trends(rows: list[dict]) -> dict:
    """α, β of the headline cells against RM parameters, with log-linear trends when ≥ 3 sizes."""
    keys = headline(rows)
    fits = stored_fits(rows)
    pts = []
    for (cell, agg), curve in _by_cell(rows).items():
        if curve[0].get("rm_size") is not None and curve[0]["method"] == "bon" and \
                _match(curve[0] | {"aggregation": agg}, keys) and (cell, agg) in fits:
            pts.append((curve[0]["rm_params"], fits[(cell, agg)]))
    pts.sort(key=lambda p: p[0])
    out = {"params": [p for p, _ in pts], "fits": [f for _, f in pts]}
    if len({p for p, _ in pts}) >= 2 and len(pts) >= 3:
        out["alpha"] = log_trend(out["params"], [f["fit_alpha"] for f in out["fits"]])
        out["beta"] = log_trend(out["params"], [f["fit_beta"] for f in out["fits"]])
    return out


def plot_size_trends(rows: list[dict]) -> Figure:
    """α and β (95% intervals) against RM non-embedding parameters (log axis), trend lines."""
    t = size_trends(rows)
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    for k, name in enumerate(("alpha", "beta")):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.set_xscale("log")
        vals = [f[f"fit_{name}"] for f in t["fits"]]
        ci = np.array([f[f"fit_{name}_ci"] for f in t["fits"]]).reshape(-1, 2)
        ax.errorbar(t["params"], vals, yerr=[np.subtract(vals, ci[:, 0]), np.subtract(ci[:, 1], vals)], fmt="o",
                    capsize=3)
        if name in t:
            x = np.geomspace(min(t["params"]), max(t["params"]) * 10, 50)
            ax.plot(x, t[name].predict(x), "--", color="0.5", label=f"slope {t[name].slope:.3f}/decade")
            ax.legend(fontsize=8)
        ax.set_xlabel("RM parameters (non-embedding)")
        ax.set_ylabel({"alpha": "α_bon", "beta": "β_bon"}[name])
        ax.grid(alpha=0.3)
    fig.suptitle("Best-of-n fit R(d) = d(α − βd) against RM size", fontsize=10)
    return fig


def thresholds(rows: list[dict]) -> dict[str, int | None]:
    """Per RM size: the smallest data size from which the proxy beats chance (binomial p < 0.05)."""
    keys = headline(rows)
    out = {}
    for size in _sizes(rows):
        cells = sorted((r for r in cell_rows(rows) if r.get("rm_size") == size and r.get("method", "bon") == "bon"
                        and _match(r, keys, skip=("data_size",))), key=lambda r: r["data_size"])
        if cells:
            out[size] = chance_threshold([r["data_size"] for r in cells], [r["val_correct"] for r in cells],
                                         [r["val_pairs"] for r in cells])
    return out


def plot_peak_vs_data(rows: list[dict]) -> Figure:
    """Peak gold (bootstrap band) against data size per RM size; the chance threshold marked."""
    keys = headline(rows)
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = _axes(fig, "Gold at the Best-of-n peak vs training comparisons (dotted: better-than-chance threshold)",
               "training comparisons", "peak gold (normalised)")
    ax.set_xscale("log")
    th = thresholds(rows)
    for i, size in enumerate(_sizes(rows)):
        cells = sorted((r for r in cell_rows(rows) if r.get("rm_size") == size and r.get("method", "bon") == "bon"
                        and _match(r, keys, skip=("data_size",))), key=lambda r: r["data_size"])
        x = [r["data_size"] for r in cells]
        y = [r["peak_gold"] for r in cells]
        ax.errorbar(x, y, yerr=[np.subtract(y, [r["peak_gold_lo"] for r in cells]),
                                np.subtract([r["peak_gold_hi"] for r in cells], y)], fmt="o-", color=f"C{i}",
                    capsize=3, label=size)
        for r in cells:
            if r["chance_p"] >= 0.05:  # not better than chance: hollow marker
                ax.plot([r["data_size"]], [r["peak_gold"]], "o", color="white", mec=f"C{i}", ms=7, zorder=5)
        if th.get(size) is not None:
            ax.axvline(th[size], color=f"C{i}", ls=":", lw=1)
    ax.legend(fontsize=8, title="RM size", title_fontsize=8)
    return fig


def plot_gap(rows: list[dict]) -> Figure:
    """Proxy − gold (overoptimization) against KL, one colour per RM size (headline slice)."""
    keys = headline(rows) | {"method": "bon"}
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = _axes(fig, "Proxy − gold gap under Best-of-n", "KL (nats)", "proxy − gold (normalised)")
    for i, size in enumerate(_sizes(rows)):
        for (_, agg), curve in _by_cell(rows).items():
            if curve[0].get("rm_size") == size and _match(curve[0] | {"aggregation": agg}, keys):
                ax.plot([r["kl"] for r in curve], [r["proxy"] - r["gold"] for r in curve], color=f"C{i}", label=size)
    ax.legend(fontsize=8)
    return fig


def plot_methods(rows: list[dict]) -> Figure | None:
    """Gold (solid) and proxy (dashed) vs d for every method and KL penalty on the same RM cells;
    None when the study has one method and one aggregation."""
    curves = _by_cell(rows)
    variants = {(c[0]["method"], c[0].get("kl_penalty"), agg) for (_, agg), c in curves.items() if c[0].get("rm_size")}
    if len(variants) < 2:
        return None
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = _axes(fig, "Methods on one axis: Best-of-n, RL / J-BOND at each KL penalty, aggregations", D_LABEL, R_LABEL)
    policy_rms = {(c[0]["rm_size"], c[0]["data_size"], c[0]["label_noise"], c[0]["seed"])
                  for c in curves.values() if c[0]["method"] != "bon" and c[0].get("rm_size")}
    keys = headline(rows)
    i = 0
    for (_, agg), c in sorted(curves.items()):
        r0 = c[0]
        if not r0.get("rm_size"):
            continue
        rm = (r0["rm_size"], r0["data_size"], r0["label_noise"], r0["seed"])
        shown = rm in policy_rms if policy_rms else _match(r0 | {"aggregation": agg}, keys, skip=("aggregation",)) \
            and r0["rm_size"] == _sizes(rows)[0]
        if not shown:
            continue
        label = f"{r0['method']}" + (f" β={r0['kl_penalty']:g}" if r0.get("kl_penalty") is not None else "") + \
            f", {agg}, {r0['rm_size']}"
        ax.plot([r["d"] for r in c], [r["gold"] for r in c], "-", color=f"C{i % 10}", lw=2, label=label)
        ax.plot([r["d"] for r in c], [r["proxy"] for r in c], "--", color=f"C{i % 10}", lw=1)
        i += 1
    ax.axhline(0, color="0.8", lw=0.8)
    ax.legend(fontsize=7)
    return fig


def plot_policy_size(studies: dict[str, list[dict]], rm_size: str = "full") -> Figure:
    """Gao's policy-size figure: Best-of-n gold gain of the `rm_size` proxy against d, mean over seeds, one panel
    per data size both studies have; one colour per policy (`studies`: its label → its results rows), in raw gold
    units (each study's pool standardisation undone: the same gold RM on both), gold-selected ceiling dotted."""
    def curves(rows):
        scale = next(r["gold_scale"] for r in rows if r.get("study") == "study_cell" and r.get("aggregation") == "gold")
        by = defaultdict(lambda: defaultdict(list))
        for r in curve_rows(rows):
            if r.get("method") == "bon" and (r.get("rm_size") == rm_size or r.get("aggregation") == "gold"):
                by[r.get("data_size") if r.get("aggregation") != "gold" else "oracle"][r["n"]].append(r)
        return {k: sorted((np.mean([p["d"] for p in ps]), scale * np.mean([p["gold"] for p in ps]))
                          for ps in pts.values()) for k, pts in by.items()}
    got = {name: curves(rows) for name, rows in studies.items()}
    datas = sorted(set.intersection(*({k for k in c if k != "oracle"} for c in got.values())))
    fig = Figure(figsize=(3.6 * max(1, len(datas)), 3.4), layout="constrained")
    axes = fig.subplots(1, max(1, len(datas)), squeeze=False, sharey=True).ravel()
    for ax, data in zip(axes, datas, strict=False):
        ax.set_title(f"{data} comparisons", fontsize=9)
        ax.grid(alpha=0.3)
        for i, (name, c) in enumerate(got.items()):
            ax.plot(*zip(*c[data], strict=True), "-", color=f"C{i}", lw=1.8, label=name)
            if "oracle" in c:
                ax.plot(*zip(*c["oracle"], strict=True), ":", color=f"C{i}", lw=1)
        ax.set_xlabel(D_LABEL, fontsize=8)
    axes[0].set_ylabel("gold gain over the policy's mean (raw gold)", fontsize=8)
    axes[0].legend(fontsize=7, loc="upper left", title="policy", title_fontsize=7)
    fig.suptitle(f"Best-of-n against the {rm_size} proxy, mean over seeds (dotted: gold-selected)", fontsize=10)
    return fig
