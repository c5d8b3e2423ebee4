"""report.html of a `goodhart study`: config, fits with intervals, figures, sample completions."""

import html

import numpy as np
import yaml

from goodhart.report.figures import STYLE, img_tag, save_figure
from goodhart.report.study_plots import (
    cell_rows,
    headline,
    plot_gao,
    plot_gap,
    plot_methods,
    plot_peak_vs_data,
    plot_size_trends,
    size_trends,
    thresholds,
)
from goodhart.runs import RunDir, atomic_write_text


def _save(run: RunDir, name: str, fig) -> str:
    """Write plots/<name>.png and .svg; return an <img> with the PNG embedded."""
    return img_tag(save_figure(run.path, name, fig), name)


def _num(v, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt) if isinstance(v, float) else str(v)


def _ci(v, ci, fmt: str = ".3f") -> str:
    """v [lo, hi]; a bound stored as null (an unbounded interval: inf is not JSON) prints as ∞."""
    def bound(x):
        return "∞" if x is None or x == float("inf") else format(x, fmt)

    return "–" if v is None else f"{v:{fmt}} [{bound(ci[0])}, {bound(ci[1])}]" if ci else f"{v:{fmt}}"


def fits_table(rows: list[dict]) -> str:
    """One row per measured proxy: accuracy, chance test, fitted α, β (95% CI), R², fitted and empirical peak."""
    head = ("cell", "method", "agg.", "params", "data", "ρ", "val acc", "p(chance)", "α", "β", "R²", "fit peak d*",
            "fit peak gold", "measured peak")
    body = []
    for r in sorted(cell_rows(rows), key=lambda r: (r.get("method", ""), r.get("rm_params") or 0,
                                                   r.get("data_size") or 0, r.get("aggregation", ""))):
        peak_at = f"n={r['peak_n']}" if "peak_n" in r else f"step {r.get('peak_step')}, KL {r.get('peak_kl', 0):.2f}"
        cells = (r["cell"], r.get("method", "bon"), r.get("aggregation"), _num(r.get("rm_params"), ","),
                 _num(r.get("data_size")), _num(r.get("label_noise"), "g"), _num(r.get("val_acc")),
                 _num(r.get("chance_p"), ".2g"), _ci(r.get("fit_alpha"), r.get("fit_alpha_ci")),
                 _ci(r.get("fit_beta"), r.get("fit_beta_ci")), _num(r.get("fit_r2")),
                 _ci(r.get("fit_peak_d"), r.get("fit_peak_d_ci"), ".2f"), _num(r.get("fit_peak_reward")),
                 f"{r['peak_gold']:.3f}" + (f" [{r['peak_gold_lo']:.2f}, {r['peak_gold_hi']:.2f}]"
                                           if r.get("peak_gold_lo") is not None else "") + f" at {peak_at}")
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{''.join(body)}</table>"


def _trend_text(rows: list[dict]) -> str:
    t = size_trends(rows)
    if "alpha" not in t:
        return "<p>Fewer than 3 RM sizes with a fit: no size trend.</p>"
    big = max(t["params"]) * 10
    a, b = float(t["alpha"].predict(big)), float(t["beta"].predict(big))
    peak = f"peak gold α²/4β = {a * a / (4 * b):.2f} at d = {a / (2 * b):.2f}" if b > 0 else "no peak (β ≤ 0)"
    return (f"<p>α = {t['alpha'].intercept:.3f} + {t['alpha'].slope:.3f}·log10(params) "
            f"(slope 95% CI [{t['alpha'].slope_ci[0]:.3f}, {t['alpha'].slope_ci[1]:.3f}], R² {t['alpha'].r2:.2f}); "
            f"β = {t['beta'].intercept:.3f} + {t['beta'].slope:.3f}·log10(params) "
            f"(slope CI [{t['beta'].slope_ci[0]:.3f}, {t['beta'].slope_ci[1]:.3f}], R² {t['beta'].r2:.2f}). "
            f"Extrapolated to {big:,.0f} parameters (10× the largest): α = {a:.3f}, β = {b:.3f}, {peak}.</p>")


def _samples(rows: list[dict]) -> str:
    picks = [r for r in rows if r.get("study") == "study_sample"]
    if not picks:
        return ""
    params = {r["cell"]: r.get("rm_params") or 0 for r in cell_rows(rows)}
    keys = headline(rows)
    cells = sorted({r["cell"] for r in picks if keys.get("data_size") is None
                    or f"-n{keys['data_size']}-" in r["cell"]}, key=lambda c: params.get(c, 0))
    shown = [c for c in (cells[:1] + cells[-1:]) if c] if cells else []
    body = "".join(
        f"<tr><td>{html.escape(r['cell'])}</td><td>{html.escape(r['at'])} (n={r['n']})</td>"
        f"<td>{html.escape(r['prompt'])}</td><td>{html.escape(r['completion'])}</td>"
        f"<td>{r['gold']:.2f}</td><td>{r['proxy']:.2f}</td></tr>"
        for c in dict.fromkeys(shown) for r in picks if r["cell"] == c)
    return ("<h2>What the proxy picks</h2><p>Best-of-n choices of the smallest and largest RM at small n, at the "
            "gold peak and at the largest n (gold and proxy normalised on the pool).</p><table><tr><th>cell</th>"
            f"<th>at</th><th>prompt</th><th>completion</th><th>gold</th><th>proxy</th></tr>{body}</table>")


def penalty_table(rows: list[dict]) -> str:
    """Does a KL penalty move the gold-vs-KL frontier or only stop earlier? Each penalised run's final
    gold against the unpenalised run's gold at the same KL (linear interpolation in KL)."""
    curves: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("study") == "study" and r.get("method") not in (None, "bon") and "step" in r:
            curves.setdefault((r["method"], r["rm_size"], r["data_size"], r.get("kl_penalty")), []).append(r)
    body = []
    for (method, size, data, beta), c in sorted(curves.items(), key=lambda kv: tuple(map(str, kv[0]))):
        base = curves.get((method, size, data, 0.0))
        if not beta or base is None:
            continue
        c, base = sorted(c, key=lambda r: r["step"]), sorted(base, key=lambda r: r["kl"])
        kl, gold = c[-1]["kl"], c[-1]["gold"]
        if kl > base[-1]["kl"]:
            continue
        ref = float(np.interp(kl, [r["kl"] for r in base], [r["gold"] for r in base]))
        body.append(f"<tr><td>{method}</td><td>{size}, {data}</td><td>{beta:g}</td><td>{kl:.2f}</td><td>{gold:.3f}</td>"
                    f"<td>{ref:.3f}</td><td>{gold - ref:+.3f}</td></tr>")
    if not body:
        return ""
    return ("<h2>KL penalty: a better frontier, or an earlier stop?</h2><p>Each penalised run's final gold against "
            "the unpenalised run's gold at the same KL (interpolated). A difference near 0 (within the runs' "
            "standard errors) means the penalty only stops the run earlier on the same frontier.</p><table><tr>"
            "<th>method</th><th>RM</th><th>penalty</th><th>final KL</th><th>final gold</th><th>β = 0 gold at that KL"
            f"</th><th>difference</th></tr>{''.join(body)}</table>")


def study_report(run: RunDir, rows: list[dict]):
    """Write plots/study_*.{png,svg} and report.html for a study directory."""
    keys = headline(rows)
    figs = [("Gold and proxy vs d by RM size", _save(run, "study_gao", plot_gao(rows)))]
    if keys:
        figs.append(("Fit parameters vs RM size", _save(run, "study_size_trend", plot_size_trends(rows))
                     + _trend_text(rows)))
        th = thresholds(rows)
        th_text = ", ".join(f"{s}: {v if v is not None else 'never'}" for s, v in th.items())
        figs.append(("Peak gold vs data size", _save(run, "study_peak_vs_data", plot_peak_vs_data(rows))
                     + f"<p>Smallest data size beating chance on validation pairs (one-sided binomial, p &lt; 0.05, "
                     f"and every larger size too): {html.escape(th_text)}.</p>"))
        figs.append(("Overoptimization gap", _save(run, "study_gap", plot_gap(rows))))
    methods = plot_methods(rows)
    if methods is not None:
        figs.append(("Methods, KL penalties and aggregations", _save(run, "study_methods", methods)))
    sections = "".join(f"<h2>{html.escape(t)}</h2>{body}" for t, body in figs)
    config = run.config() if (run.path / "config.yaml").is_file() else {}
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>goodhart study</title>{STYLE}</head><body>
<h1>goodhart study: overoptimization against RM size and data</h1>
<p>Each proxy RM re-ranks one shared pool of initial-policy samples (Best-of-n, unbiased estimator, d = sqrt(KL bound));
RL / J-BOND cells train the policy against the same RM (d = sqrt of the k3 KL estimate). Gold is what the proxy was
trained to imitate; both are normalised so the initial policy scores 0 with unit std. Fits: R_bon(d) = d(α − βd),
R_rl(d) = d(α − β log d), least squares without intercept, 95% t intervals (SPEC §10). Headline slice:
{html.escape(", ".join(f"{k} {v}" for k, v in keys.items()))}.</p>
{sections}{penalty_table(rows)}<h2>Fits</h2>{fits_table(rows)}{_samples(rows)}
<h2>Config</h2><pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}</pre>
<p>Data: <code>results.jsonl</code> ({len(rows)} rows). Rebuild with <code>goodhart report {html.escape(str(run.path))}</code>.</p>
</body></html>"""
    out = run.path / "report.html"
    atomic_write_text(out, page)
    return out
