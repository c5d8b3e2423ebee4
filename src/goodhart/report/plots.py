"""Plot functions: results rows in, matplotlib Figure out (no training, no saving)."""

import numpy as np
from matplotlib.figure import Figure

from goodhart.bon.estimator import kl_bound
from goodhart.errors import GoodhartError
from goodhart.report.tables import rl_curves, selector_order

SELECTOR_STYLE = {"proxy": ("C0", "selected by proxy RM"), "gold": ("0.55", "selected by gold (oracle)")}


def _series(rows: list[dict], key: str) -> list[float]:
    return [float("nan") if r.get(key) is None else r[key] for r in rows]


def plot_bon(rows: list[dict], rl: list[dict] = ()) -> Figure:
    """Gao-style figure: gold (solid) and proxy (dashed) Best-of-n reward vs d = sqrt(KL), with bands, for
    each proxy of a run (reward_model "proxy", "proxy_<P>"), and gold picked by gold (the ceiling); with
    `rl` rows (`goodhart run`'s RL leg, study "rl"), a second panel: RLOO against each of those proxies,
    in the same colours, against d = sqrt(KL) measured on the evaluation prompts.

    rows: results rows with method 'bon' and columns reward_model, n, d, gold(_lo/_hi), proxy(_lo/_hi).
    """
    bon = [r for r in rows if r.get("method") == "bon"]
    if not bon:
        raise GoodhartError("no Best-of-n rows (method 'bon') in the results table")
    fig = Figure(figsize=(14, 6.2) if rl else (10, 4.8), layout="constrained")
    ax = fig.add_subplot(1, 2 if rl else 1, 1)
    selectors = sorted({r["reward_model"] for r in bon}, key=selector_order)
    if "proxy" not in selectors:  # many proxies (an RM suite): one gold curve each
        return _plot_many(ax, fig, bon, selectors)
    proxies = [s for s in selectors if s.startswith("proxy")]
    # one colour per proxy, shared by the RL panel
    colours = {s: SELECTOR_STYLE["proxy"][0] if len(proxies) == 1 else f"C{i % 10}" for i, s in enumerate(selectors)}
    for selector in selectors:
        sel = sorted((r for r in bon if r["reward_model"] == selector), key=lambda r: r["n"])
        if selector == "gold":
            color, label = SELECTOR_STYLE["gold"]
        else:
            color = colours[selector]
            label = (SELECTOR_STYLE["proxy"][1] if len(proxies) == 1 else
                     f"{sel[0].get('rm_pairs', '?')} comparisons (acc {sel[0].get('rm_val_acc') or float('nan'):.2f})")
        d = _series(sel, "d")
        # the peak goes into the legend, not beside its marker: two proxies peaking at one n drew their
        # labels on top of each other
        best = max(sel, key=lambda r: r["gold"]) if selector != "gold" else None
        peak = "" if not best else (f", peak n={best['n']}" if best["n"] < sel[-1]["n"] else
                                    f", rising to n={best['n']}")  # the best n is the pool's last: no peak seen
        line = ax.plot(d, _series(sel, "gold"), "-", color=color, lw=2, label=f"gold, {label}{peak}")[0]
        ax.fill_between(d, _series(sel, "gold_lo"), _series(sel, "gold_hi"), color=line.get_color(), alpha=0.15, lw=0)
        if best:
            ax.plot(d, _series(sel, "proxy"), "--", color=line.get_color(), lw=1.5, label=f"proxy, {label}")
            ax.plot([best["d"]], [best["gold"]], "o", color=line.get_color())
    top = next(r for r in bon if r["reward_model"] == "proxy")
    what = (f"{top.get('rm_pairs', '?')} comparisons" if len(proxies) == 1 else
            f"{len(proxies)} proxies (data sizes)")
    ax.set_title(f"Best-of-n on {top.get('world', '?')}: proxy RM {top.get('rm_backbone', '?')}, {what}", fontsize=10)
    _finish(ax, bon, "reward (normalised: initial policy mean 0, std 1)", below=bool(rl))
    if rl:
        _plot_rl(fig.add_subplot(1, 2, 2), rl, colours)
    return fig


def _plot_rl(ax, rl: list[dict], colours: dict[str, str]) -> None:
    """RLOO against each proxy: gold (solid, bars: 95% over evaluation prompts) and proxy (dashed) vs d."""
    for name, sel in rl_curves(rl).items():
        colour, d = colours.get(name, "C7"), _series(sel, "d")
        best = max(sel, key=lambda r: r["gold"])
        peak = f", peak step {best['step']}" if best["step"] < sel[-1]["step"] else ", still rising"
        ax.errorbar(d, _series(sel, "gold"), yerr=_yerr(sel, "gold"), fmt="-o", ms=3, color=colour, capsize=2,
                    lw=2, label=f"gold, RLOO vs {sel[0].get('rm_pairs', '?')} comparisons{peak}")
        ax.plot(d, _series(sel, "proxy"), "--", color=colour, lw=1.5,
                label=f"proxy, RLOO vs {sel[0].get('rm_pairs', '?')} comparisons")
    ax.set_xlabel("d = sqrt(KL(π ‖ π_ref))  [k3 on the evaluation prompts]")
    ax.set_title(f"RLOO (β_KL = {rl[0].get('beta_kl', 0):g}) against the proxies, same prompts", fontsize=10)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.grid(alpha=0.3)
    _legend_off_data(ax, below=True)


def _legend_off_data(ax, below: bool) -> None:
    """The legend outside the data: right of the panel, or under it where a second panel sits to the right."""
    if below:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, borderaxespad=0)
    else:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _finish(ax, bon: list[dict], ylabel: str, below: bool = False) -> Figure:
    ax.set_xlabel("d = sqrt(KL(π_BoN ‖ π_ref))  [nats^½, analytic bound]")
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.grid(alpha=0.3)
    _legend_off_data(ax, below)
    secondary = ax.secondary_xaxis("top", functions=(lambda d: d, lambda d: d))
    # powers of 4: d crowds together at large n, and labels at every power of 2 past 1,024 overlapped
    top = max(r["n"] for r in bon)
    ns = [4**k for k in range(int(np.log(top) / np.log(4)) + 1)]
    secondary.set_xticks(np.sqrt(kl_bound(np.array(ns))), labels=[f"{n:,}" for n in ns], fontsize=7)
    secondary.set_xlabel("n", fontsize=8)
    return ax.figure


def _plot_many(ax, fig, bon: list[dict], selectors: list[str]) -> Figure:
    """Gold vs d for several proxies (members greyed, aggregates coloured)."""
    for i, selector in enumerate(s for s in selectors if not s.startswith("member")):
        sel = sorted((r for r in bon if r["reward_model"] == selector), key=lambda r: r["n"])
        ax.plot(_series(sel, "d"), _series(sel, "gold"), "-", lw=1.8, color=f"C{i % 10}", label=selector)
    for selector in (s for s in selectors if s.startswith("member")):
        sel = sorted((r for r in bon if r["reward_model"] == selector), key=lambda r: r["n"])
        ax.plot(_series(sel, "d"), _series(sel, "gold"), "-", lw=0.8, color="0.6",
                label="single members" if selector == "member_0" else None)
    ax.set_title(f"Best-of-n gold with each reward model as the proxy ({bon[0].get('world', '?')})", fontsize=10)
    return _finish(ax, bon, "gold reward of the proxy's pick (normalised)")


def plot_suite_accuracy(pooled: dict[float, list[dict]]) -> Figure:
    """Grouped bars per reward model, one panel per label noise ρ: clean accuracy, agreement with flipped
    labels (memorisation), OOD accuracy; means over seeds with their t intervals (report.suite_tables)."""
    fig = Figure(figsize=(9, 4.2 * len(pooled)), layout="constrained")
    for k, (rho, recs) in enumerate(pooled.items()):
        ax = fig.add_subplot(len(pooled), 1, k + 1)
        for j, (key, label) in enumerate((("clean_acc", "clean held-out"), ("flipped_memorised", "flipped train (↓ better)"),
                                          ("ood_acc", "OOD"))):
            xs = np.arange(len(recs)) + (j - 1) * 0.27
            mean = np.array([r[key][0] for r in recs], dtype=float)
            lo = np.array([np.nan if r[key][1] is None else r[key][1] for r in recs], dtype=float)
            hi = np.array([np.nan if r[key][2] is None else r[key][2] for r in recs], dtype=float)
            ax.bar(xs, mean, width=0.27, label=label, yerr=[mean - lo, hi - mean], capsize=2)
        ax.set_xticks(range(len(recs)), [r["reward_model"] for r in recs], rotation=45, ha="right", fontsize=8)
        ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
        ax.set_ylabel("pairwise accuracy")
        ax.set_title(f"label noise ρ = {rho:g}", fontsize=9)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    return fig


def _run_label(r: dict) -> str:
    return r.get("run") or f"{r['method']}, β_KL={r.get('beta_kl', 0.0):g}"


def _yerr(sel: list[dict], key: str):
    """Prompt-bootstrap interval where the rows have one, else ±1 standard error."""
    if all(r.get(f"{key}_lo") is not None for r in sel):
        y = np.array(_series(sel, key))
        return [y - _series(sel, f"{key}_lo"), np.array(_series(sel, f"{key}_hi")) - y]
    return _series(sel, f"{key}_se")


def plot_policy(rows: list[dict]) -> Figure:
    """Policy optimisation on one axis: left, gold (solid) and proxy (dashed) against d = sqrt(KL(π‖π_ref))
    (k3 on held-out prompts; Best-of-n rows of a reference pool: the KL bound) with one colour per run;
    right, gold against proxy (Gao et al. Fig. 10). Bars: 95% prompt-bootstrap intervals where the rows
    have them, else ±1 standard error over evaluation samples. One legend, outside the panels, names each
    colour once (a grid of 12+ runs had buried the curves under two legends)."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    bon_cells = sorted({r.get("cell", "bon") for r in rows if r["method"] == "bon"}, key=lambda c: (c != "bon", c))
    runs = sorted({_run_label(r) for r in rows if r["method"] != "bon"})
    palette = colormaps["tab10" if len(runs) <= 10 else "tab20"]
    fig = Figure(figsize=(13, 5.2), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    for j, cell in enumerate(bon_cells):  # one Best-of-n curve per reward model of the reference pool
        bon = sorted((r for r in rows if r["method"] == "bon" and r.get("cell", "bon") == cell), key=lambda r: r["n"])
        d, grey, name = _series(bon, "d"), str(0.3 + 0.25 * j), "Best-of-n" + cell[3:].replace("@", " by ")
        ax.plot(d, _series(bon, "gold"), "-" if j == 0 else ":", color=grey, lw=2)
        if j == 0:
            ax.fill_between(d, _series(bon, "gold_lo"), _series(bon, "gold_hi"), color=grey, alpha=0.15, lw=0)
        ax.plot(d, _series(bon, "proxy"), "--", color=grey, lw=1.2)
        bx.plot(_series(bon, "proxy"), _series(bon, "gold"), "-" if j == 0 else ":", color=grey, lw=2,
                label=f"{name} (reference pool)")
    for i, label in enumerate(runs):
        sel = sorted((r for r in rows if r["method"] != "bon" and _run_label(r) == label), key=lambda r: r["step"])
        d, color = _series(sel, "d"), palette(i % palette.N)
        ax.errorbar(d, _series(sel, "gold"), yerr=_yerr(sel, "gold"), fmt="-o", ms=3, color=color, capsize=2)
        ax.plot(d, _series(sel, "proxy"), "--", color=color)
        bx.errorbar(_series(sel, "proxy"), _series(sel, "gold"), yerr=_yerr(sel, "gold"), fmt="-o", ms=3,
                    color=color, label=label, capsize=2)
    ax.set_xlabel("d = sqrt(KL(π ‖ π_ref))  [policies: k3 on held-out prompts; Best-of-n: bound]")
    ax.set_ylabel("reward (normalised on the initial policy)")
    bx.set(xlabel="proxy reward (normalised)", ylabel="gold reward (normalised)")
    first = rows[0]
    ax.set_title(f"Policy optimisation on {first.get('world', '?')} against proxy {first.get('reward_model', '?')}",
                 fontsize=10)
    bx.set_title("gold against proxy: where the methods part", fontsize=10)
    ax.legend(handles=[Line2D([], [], color="0.3", lw=2, label="gold (bars: 95% over prompts)"),
                       Line2D([], [], color="0.3", ls="--", label="proxy")], fontsize=7, loc="upper left")
    for a in (ax, bx):
        a.axhline(0, color="0.8", lw=0.8)
        a.grid(alpha=0.3)
    fig.legend(*bx.get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    return fig


def plot_soft_frontier(rows: list[dict]) -> Figure:
    """Gold vs sqrt(KL): hard Best-of-n (every n, KL bound) against soft BoN's tilted limit (each λ)."""
    hard = sorted((r for r in rows if r.get("study") == "frontier" and r["method"] == "bon"), key=lambda r: r["n"])
    soft = sorted((r for r in rows if r.get("study") == "frontier" and r["method"] == "soft_bon"), key=lambda r: r["kl"])
    if not hard or not soft:
        raise GoodhartError("no frontier rows (study 'frontier') in the results table")
    fig = Figure(figsize=(7, 4.4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([r["d"] for r in hard], [r["gold"] for r in hard], "-", color="C0", lw=2, label="hard Best-of-n (n = 1…N)")
    ax.plot([r["d"] for r in soft], [r["gold"] for r in soft], "o--", color="C3", ms=4,
            label="soft BoN, tilted limit π_ref·exp(r/λ)/Z")
    for r in soft[:: max(1, len(soft) // 6)]:
        ax.annotate(f"λ={r['lam']:.2g}", (r["d"], r["gold"]), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("d = sqrt(KL)  [nats^½; hard: bound, soft: tilted KL on the pool]")
    ax.set_ylabel("gold (normalised)")
    ax.set_title("Gold vs KL frontier: soft against hard Best-of-n (selection by the ensemble proxy)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
