"""report.html and plots/ for a run directory, rebuilt from results.jsonl alone."""

import html
import math
from pathlib import Path

from goodhart.errors import GoodhartError
from goodhart.report.figures import STYLE, img_tag, save_figure
from goodhart.report.plots import plot_bon, plot_policy, plot_suite_accuracy
from goodhart.report.suite_tables import pooled_suite, suite_markdown
from goodhart.report.tables import curve_lines
from goodhart.runs import RESULTS, RunDir, atomic_write_text


def _fmt(r: dict, key: str) -> str:
    if r.get(key) is None:
        return "–"
    lo, hi = r.get(f"{key}_lo"), r.get(f"{key}_hi")
    band = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
    return f"{r[key]:.3f}{band}"


def _key_rows(rows: list[dict]) -> list[tuple[str, dict]]:
    sel = sorted((r for r in rows if r["method"] == "bon" and r["reward_model"] == "proxy"), key=lambda r: r["n"])
    if not sel:
        return []
    peak = max(sel, key=lambda r: r["gold"])
    picks = [("smallest n", sel[0]), ("gold peak", peak), ("largest n", sel[-1])]
    return [(label, r) for i, (label, r) in enumerate(picks) if r not in [p for _, p in picks[:i]]]


def markdown_tables_html(text: str) -> str:
    """The suite's markdown (### headings and | tables) as HTML."""
    out, table = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|- "):
                table.append("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in line.strip("|").split("|")) + "</tr>")
            continue
        if table:
            out.append(f"<table>{''.join(table)}</table>")
            table = []
        if line.startswith("### "):
            out.append(f"<h3>{html.escape(line[4:])}</h3>")
    return "".join(out)


def _suite_section(run: RunDir, all_rows: list[dict]) -> str:
    pooled = pooled_suite(all_rows)
    png = save_figure(run.path, "rm_accuracy", plot_suite_accuracy(pooled))
    return ("<h2>Reward models: members, ensembles, WARM (pooled over seeds)</h2>"
            f"{markdown_tables_html(suite_markdown(all_rows))}{img_tag(png, 'RM accuracies')}")


def _norm_source(rows: list[dict]) -> str:
    r = rows[0]
    if r.get("norm_from") == "reference pool":
        return (f"one reference pool of initial-policy samples for every row, gold (g − {r['gold_shift']:.4f}) / "
                f"{r['gold_scale']:.4f}, proxy (r − {r['proxy_shift']:.4f}) / {r['proxy_scale']:.4f}")
    return "each run on its own first evaluation"


def _policy_report(run: RunDir, rows: list[dict]) -> Path:
    fig = plot_policy(rows)
    png = save_figure(run.path, "policy", fig)
    cells = ("run", "method", "beta_kl", "step", "n", "kl", "d", "gold", "gold_lo", "gold_hi", "proxy", "proxy_se")
    cells = tuple(c for c in cells if any(r.get(c) is not None for r in rows))
    body = "".join("<tr>" + "".join(
        f"<td>{r[c]:.3f}</td>" if isinstance(r.get(c), float) else f"<td>{html.escape(str(r.get(c)))}</td>"
        for c in cells) + "</tr>" for r in rows)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>goodhart policy report</title>{STYLE}</head>
<body><h1>goodhart: policy optimisation, gold vs proxy</h1>
<p>Gold and proxy reward of the policy's samples on held-out prompts (normalised so the initial
policy scores 0 with unit standard deviation: {html.escape(_norm_source(rows))}) against d = sqrt(KL(π‖π_ref)),
KL estimated with k3 (Best-of-n rows: the analytic bound). Overoptimization: proxy (dashed) still rising
while gold (solid) stalls or falls. Bars: 95% intervals over evaluation prompts.</p>
{img_tag(png, "gold and proxy vs sqrt(KL)")}
<table><tr>{"".join(f"<th>{c}</th>" for c in cells)}</tr>{body}</table></body></html>
"""
    out = run.path / "report.html"
    atomic_write_text(out, page)
    return out


MEASURED = ("n", "kl", "d", "gold", "proxy")  # a row that has these must have them as finite numbers


def check_finite(rows: list[dict], source: Path) -> None:
    """Refuse rows whose measured values are missing or not finite (written as null for NaN / inf): a
    report drawn from them would silently hide points."""
    for i, r in enumerate(rows, 1):
        bad = [k for k in MEASURED if k in r and not (isinstance(r[k], int | float) and math.isfinite(r[k]))]
        if bad:
            raise GoodhartError(f"{source}: row {i} has a non-finite {', '.join(bad)} ({r.get(bad[0])!r}); "
                                "the report needs every measured point")


def _facts(rows: list[dict], top: dict) -> list[tuple[str, object]]:
    """The setup table of a run's report: world, gold, the proxies, the pool, the normalisations."""
    family = sorted({(r["reward_model"], r.get("rm_pairs")) for r in rows if r["reward_model"].startswith("proxy_")},
                    key=lambda x: x[1] or 0)
    return [
        ("world", top.get("world")), ("gold reward", top.get("gold_reward")),
        ("proxy RM backbone", top.get("rm_backbone")), ("proxy RM parameters", f"{top.get('rm_params', 0):,}"),
        ("training comparisons (main proxy)", top.get("rm_pairs")),
        ("weaker proxies", ", ".join(f"{name}: first {p} of them" for name, p in family) or "none"),
        ("label noise ρ", top.get("label_noise")),
        ("proxy validation accuracy", f"{top['rm_val_acc']:.3f}" if top.get("rm_val_acc") is not None else None),
        ("evaluation pool", f"{top.get('eval_prompts')} prompts × N = {top.get('pool_n')} samples"),
        ("gold normalisation", f"(g − {top.get('gold_shift', 0):.4f}) / {top.get('gold_scale', 1):.4f}"),
        ("proxy normalisation", f"(r − {top.get('proxy_shift', 0):.4f}) / {top.get('proxy_scale', 1):.4f}"),
    ]


RL_NOTE = """<p>Right: RLOO against the named proxies from the same initial policy, trained on the run's training
prompts and evaluated on its evaluation prompts every few steps; d = sqrt(KL) is measured (k3 estimator),
gold and proxy are in the pool's normalisation. RL reaches d far beyond the pool's Best-of-n. Bars: 95%
bootstrap over evaluation prompts. Each run lives in <code>rl/&lt;proxy&gt;</code>.</p>
"""


def build_report(run_dir: str | Path) -> Path:
    """Write plots/bon.{png,svg} and report.html into run_dir from its results.jsonl; returns the html path."""
    run = RunDir(run_dir)
    if not (run.path / RESULTS).is_file():
        raise GoodhartError(f"{run.path} has no {RESULTS}; is it a goodhart run directory?")
    all_rows = run.results()
    check_finite(all_rows, run.path / RESULTS)
    if any(r.get("study") == "study_cell" for r in all_rows):
        from goodhart.report.study_html import study_report

        return study_report(run, all_rows)
    policy_rows = [r for r in all_rows if r.get("study") == "policy"]
    rows = [r for r in all_rows if r.get("method") == "bon" and r.get("study") != "policy"]
    if policy_rows and not rows:  # policy runs (with a pareto sweep's reference Best-of-n rows)
        return _policy_report(run, policy_rows)
    if not rows:
        raise GoodhartError(f"{run.path / RESULTS} holds no Best-of-n or policy rows; nothing to report")
    missing = [k for k in ("reward_model", "n", "d", "gold", "proxy") if any(k not in r for r in rows)]
    if missing:
        raise GoodhartError(f"{run.path / RESULTS} rows lack the column(s) {', '.join(missing)}")
    suite = [r for r in all_rows if r.get("study") == "rm_suite"]
    if suite:  # one replicate's curves on the plot: the first seed at the largest label noise
        rho, seed = max(r["label_noise"] for r in suite), min(r["seed"] for r in suite)
        rows = [r for r in rows if r.get("label_noise", rho) == rho and r.get("seed", seed) == seed]
    rl = [r for r in all_rows if r.get("study") == "rl"]  # goodhart run's RL leg
    png = save_figure(run.path, "bon", plot_bon(rows, rl))
    suite_html = _suite_section(run, all_rows) if suite else ""

    top = next((r for r in rows if r["reward_model"] == "proxy"), rows[0])
    facts = _facts(rows, top)
    fact_html = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    key_html = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{r['n']}</td><td>{r['d']:.3f}</td>"
        f"<td>{_fmt(r, 'gold')}</td><td>{_fmt(r, 'proxy')}</td></tr>"
        for label, r in _key_rows(rows)
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>goodhart report — {html.escape(str(top.get('world')))}</title>
{STYLE}</head><body>
<h1>goodhart: Best-of-n gold vs proxy</h1>
<p>The policy's completions are re-ranked by a learned <b>proxy</b> reward model; the <b>gold</b> reward
that labelled the proxy's training comparisons measures what is really gained. Each curve is the
unbiased Best-of-n estimate (mean over all size-n subsets of the pool) against
d = sqrt(KL), KL = log n − (n − 1)/n. Rewards are normalised so the initial policy scores 0 with
unit standard deviation. Bands: 95% bootstrap over prompts (SPEC §11). Overoptimization shows
as proxy (dashed) still rising while gold (solid) flattens or falls.</p>
{img_tag(png, "gold and proxy vs sqrt(KL)")}
{RL_NOTE if rl else ""}<h2>What happened</h2>
<p>One line per proxy, by a stated rule: "still rising" when gold is highest at the largest n; a fall
is claimed only when the paired 95% interval of gold at the peak minus gold at the largest n (peak chosen
on half the prompts, measured on the other half; SPEC §11) is above 0.</p>
<ul>{"".join(f"<li>{html.escape(line)}</li>" for line in curve_lines(rows + rl))}</ul>
<h2>Key points (selected by the main proxy RM)</h2>
<table><tr><th></th><th>n</th><th>d</th><th>gold [95% CI]</th><th>proxy [95% CI]</th></tr>{key_html}</table>
{suite_html}<h2>Setup</h2><table>{fact_html}</table>
<p>Data: <code>results.jsonl</code> ({len(rows)} rows); plots in <code>plots/</code>.</p>
</body></html>
"""
    out = run.path / "report.html"
    atomic_write_text(out, page)
    return out
