"""`goodhart claims STUDY_DIR`: one row per claim of the papers that the study measured — the measured
value with its 95% interval and a verdict given by one stated rule, never by prose (SPEC §11).

Intervals pool the study's seeds: each bootstrap draw resamples the seeds with replacement and, within
each drawn seed, draws its estimate from a normal matched to that seed's own prompt-bootstrap interval;
so the pooled interval carries seed-to-seed as well as prompt-to-prompt variation.
"""

from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

from goodhart.bon.prompt_stats import DRAWS, Z95, interval_sd, pooled
from goodhart.commands.pareto_claims import pareto_claims
from goodhart.commands.suite_claims import suite_claims
from goodhart.errors import GoodhartError
from goodhart.report.verdicts import (  # noqa: F401 (RULE: the CLI reads it here)
    NOT_REACHED,
    RULE,
    claim_row,
    equivalence,
    fmt_estimate,
    holm,
    interval_p,
    majority,
    past_peak,
    verdict,
)
from goodhart.runs import RESULTS, RunDir, atomic_write_text


def slope(xs, values, lows, highs, seed: int = 0) -> tuple[float, float, float]:
    """Slope of value on log10(x) over the cells, with an interval from drawing every cell from its own
    (seed-pooled) interval and refitting."""
    x = np.log10(np.asarray(xs, float))
    v, sd = np.asarray(values, float), np.array([interval_sd(lo, hi) for lo, hi in zip(lows, highs, strict=True)])
    draws = np.random.default_rng(seed).standard_normal((DRAWS, len(v))) * sd + v
    fit = np.polyfit(x, draws.T, 1)[0]
    return float(np.polyfit(x, v, 1)[0]), float(np.percentile(fit, 2.5)), float(np.percentile(fit, 97.5))


def _cells(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Best-of-n cells of single RMs at the lowest label noise, grouped by (rm_size, data_size) over seeds."""
    cells = [r for r in rows if r.get("study") == "study_cell" and r.get("method", "bon") == "bon"
             and r.get("rm_size") is not None and r.get("aggregation") == "single"]
    noise = min((r["label_noise"] for r in cells), default=0)
    groups = defaultdict(list)
    for r in cells:
        if r["label_noise"] == noise:
            groups[(r["rm_size"], r["data_size"])].append(r)
    return groups


def _pool_key(group: list[dict], key: str, lo: str, hi: str) -> tuple[float, float, float] | None:
    got = [r for r in group if r.get(key) is not None and r.get(lo) is not None and r.get(hi) is not None]
    return pooled([r[key] for r in got], [r[lo] for r in got], [r[hi] for r in got]) if got else None


def _fit_key(group, name):
    got = [r for r in group if r.get(f"fit_{name}") is not None and r.get(f"fit_{name}_ci")]
    return pooled([r[f"fit_{name}"] for r in got], [r[f"fit_{name}_ci"][0] for r in got],
                  [r[f"fit_{name}_ci"][1] for r in got]) if got else None


def _peak_passed(group: list[dict], max_n: dict[str, int]) -> tuple[int, int]:
    """(seeds whose gold peaks before the pool's largest n, seeds with a known largest n)."""
    known = [r for r in group if r.get("cell") in max_n]
    return sum(r["peak_n"] < max_n[r["cell"]] for r in known), len(known)


def fall_rows(groups, max_n: dict[str, int] | None = None) -> list[dict]:
    """One row per (RM size, data size) cell: the seed-pooled split-half fall, its regime (the curve passed
    its peak: gold highest before the pool's largest n in a majority of seeds), then the family: how many
    falls survive Holm over the cells whose regime was reached, and one row per data size pooling its cells."""
    max_n = max_n or {}
    out, family, by_data = [], [], defaultdict(list)
    for (size, data), group in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        fall = _pool_key(group, "fall", "fall_lo", "fall_hi")
        seeds = ", ".join(str(r["seed"]) for r in group)
        claim = f"proxy rises while gold peaks and falls ({size}, {data} comparisons)"
        if fall is None:
            out.append(claim_row(claim, "no paired fall (needs ≥ 4 eval prompts and bon.bootstrap > 0)", "not measured"))
            continue
        passed, known = _peak_passed(group, max_n)
        reached = not known or majority(passed, known)
        regime = (f"peak passed in {passed}/{known} seeds" if known else "peak position unknown") + (
            "" if reached else ": gold is highest at the pool's largest n, so a fall cannot show (a larger pool "
            "or RL reaches it)")
        rise = float(np.mean([r["proxy_at_max_n"] for r in group]))
        measured = f"gold(peak) − gold(max n) {fmt_estimate(fall)}; proxy at max n {rise:+.2f}"
        v = NOT_REACHED if not reached else verdict(fall[1], fall[2]) if rise > 0 else "contradicted"
        out.append(claim_row(claim, measured, v, seeds, regime, interval=fall[1:]))
        by_data[data] += group
        if reached:
            family.append((claim, fall))
    return out + _fall_family(family, by_data)


def _fall_family(family: list, by_data: dict) -> list[dict]:
    claim = "falls across the grid, after Holm over its cells (family-wise 5%)"
    if not family:
        rows = [claim_row(claim, "no cell passed its peak", NOT_REACHED, regime="no cell reached")]
    else:
        kept = holm([interval_p(*f) for _, f in family])
        names = "; ".join(c[c.index("(") + 1:-1] for (c, _), k in zip(family, kept, strict=True) if k) or "none"
        rows = [claim_row(claim, f"{sum(kept)} of {len(family)} cells claim a fall after Holm ({names})",
                          "reproduced" if any(kept) else "inconclusive", regime=f"{len(family)} cells past their peak")]
    for data, group in sorted(by_data.items()):
        fall = _pool_key(group, "fall", "fall_lo", "fall_hi")
        rows.append(claim_row(f"gold falls after its peak, pooled over RM sizes ({data} comparisons)",
                              f"gold(peak) − gold(max n) {fmt_estimate(fall)} over {len(group)} seed-cells",
                              verdict(fall[1], fall[2]), interval=fall[1:]))
    return rows


def rl_groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """A study's RL cell summaries with a split-half fall, grouped by (method, β_KL, RM size, data size) over seeds."""
    groups = defaultdict(list)
    for r in rows:
        if r.get("study") == "study_cell" and r.get("method") in ("rloo", "reinforce") and r.get("fall") is not None:
            groups[(r["method"], r["kl_penalty"], r["rm_size"], r["data_size"])].append(r)
    return groups


def bon_max_n(rows: list[dict]) -> dict[str, int]:
    """Each Best-of-n cell's largest n (its pool's end): where a curve still at its peak has not passed it."""
    return {cell: max(r["n"] for r in pts) for cell, pts in _curves(rows).items() if pts[0].get("method") == "bon"}


def rl_fall_rows(rows: list[dict]) -> list[dict]:
    """Under RL, one row per (method, β_KL, RM size, data size) over seeds: the seed-pooled split-half fall of
    gold after its peak evaluation (SPEC §11, policy_train.regime: the peak chosen on half the prompts, the fall measured
    on the others), its regime (verdicts.past_peak: that split-half fall above 0 in a majority of seeds) and the
    proxy's rise (its last evaluation, in the run's own normalisation: 0 is the initial policy)."""
    groups = rl_groups(rows)
    out = []
    for (method, beta, size, data), group in sorted(groups.items(), key=lambda kv: (kv[0][:2], kv[0][3], kv[0][2])):
        fall = _pool_key(group, "fall", "fall_lo", "fall_hi")
        passed = sum(map(past_peak, group))
        reached = majority(passed, len(group))
        rise = float(np.mean([r["proxy_at_max_n"] for r in group]))
        kl = float(np.median([r["final_kl"] for r in group]))
        regime = f"peak passed in {passed}/{len(group)} seeds (median final KL {kl:.1f})" + (
            "" if reached else ": gold still rising at the last evaluation, train longer")
        v = NOT_REACHED if not reached else verdict(fall[1], fall[2]) if rise > 0 else "contradicted"
        out.append(claim_row(f"under {method.upper()} (β_KL {beta:g}) the proxy rises while gold peaks and falls "
                             f"({size}, {data} comparisons)",
                             f"gold(peak) − gold(last step) {fmt_estimate(fall)}; proxy at the last step {rise:+.2f}",
                             v, ", ".join(str(r["seed"]) for r in group), regime, interval=fall[1:]))
    return out


def trend_rows(groups, params: dict) -> list[dict]:
    """α up, β down and peak gold up with RM size (at the largest data size); α and peak gold up with data."""
    out = []
    datas, sizes = sorted({d for _, d in groups}), sorted({s for s, _ in groups}, key=params.get)
    top = datas[-1] if datas else None
    specs = [("α rises with RM size", "alpha", 1), ("β falls with RM size", "beta", -1),
             ("peak gold rises with RM size", "peak_gold", 1)]
    for claim, name, direction in specs:
        cells = [(params[s], groups[(s, top)]) for s in sizes if (s, top) in groups]
        out.append(_trend(claim + f" ({top} comparisons)", cells, name, direction, "RM sizes"))
    big = sizes[-1] if sizes else None
    for claim, name in (("more data raises α", "alpha"), ("more data raises peak gold", "peak_gold")):
        cells = [(d, groups[(big, d)]) for d in datas if (big, d) in groups]
        out.append(_trend(claim + f" (RM {big})", cells, name, 1, "data sizes"))
    return out


def _trend(claim: str, cells, name: str, direction: int, what: str) -> dict:
    ests = [(x, _fit_key(g, name) if name != "peak_gold" else _pool_key(g, "peak_gold", "peak_gold_lo",
                                                                         "peak_gold_hi")) for x, g in cells]
    ests = [(x, e) for x, e in ests if e is not None]
    if len(ests) < 2:
        return claim_row(claim, f"needs ≥ 2 {what} with a fit (the study has {len(ests)})", "not measured")
    s = slope([x for x, _ in ests], *zip(*[e for _, e in ests], strict=True))
    return claim_row(claim, f"slope per decade {fmt_estimate(s)} over {len(ests)} {what}", verdict(s[1], s[2], direction),
                     interval=s[1:])


def threshold_row(groups) -> dict:
    """Near chance below a data size: the smallest data size fails the binomial test, the largest passes."""
    claim = "a data threshold below which proxies are near chance"
    datas = sorted({d for _, d in groups})
    if len(datas) < 2:
        return claim_row(claim, "needs ≥ 2 data sizes", "not measured")
    p = {d: float(np.median([r["chance_p"] for (_, dd), g in groups.items() if dd == d for r in g])) for d in datas}
    value = f"median binomial p vs chance: {datas[0]} → {p[datas[0]]:.3g}, {datas[-1]} → {p[datas[-1]]:.3g}"
    small, large = p[datas[0]] >= 0.05, p[datas[-1]] < 0.05
    return claim_row(claim, value + " (rule: smallest p ≥ 0.05 and largest p < 0.05)",
                "reproduced" if small and large else "contradicted" if not small else "inconclusive")


def heldout_row(groups) -> dict:
    claim = "the BoN form fits (fit on n ≤ N/8 predicts larger n)"
    got = [r for g in groups.values() for r in g if r.get("heldout_coverage") is not None]
    if not got:
        return claim_row(claim, "no held-out check (needs ≥ 2 distinct n ≤ N/8 and bon.bootstrap > 0)", "not measured")
    cover, mae = np.mean([r["heldout_coverage"] for r in got]), np.mean([r["heldout_mae"] for r in got])
    return claim_row(claim, f"held-out n covered {cover:.2f} (mean over {len(got)} cells), MAE {mae:.3f} "
                       "(rule: coverage ≥ 0.8 reproduced, < 0.5 contradicted)",
                "reproduced" if cover >= 0.8 else "contradicted" if cover < 0.5 else "inconclusive")


def seeds_row(groups) -> dict:
    claim = "the fall and the fit replicate across seeds"
    seeds = {r["seed"] for g in groups.values() for r in g}
    if len(seeds) < 2:
        return claim_row(claim, f"needs ≥ 2 seeds (grid.seeds); the study has {len(seeds)}", "not measured")
    spread = [np.ptp([r["fit_alpha"] for r in g]) for g in groups.values() if len(g) > 1 and
              all(r.get("fit_alpha") is not None for r in g)]
    agree = [len({np.sign(r["fall"]) for r in g}) == 1 for g in groups.values() if all("fall" in r for r in g)]
    return claim_row(claim, f"{len(seeds)} seeds; α range across seeds (median over cells) {np.median(spread):.3f}; "
                       f"sign of the fall agrees in {sum(agree)}/{len(agree)} cells (rule: all agree)",
                "reproduced" if agree and all(agree) else "inconclusive", ", ".join(map(str, sorted(seeds))))


def _curves(rows: list[dict]) -> dict[str, list[dict]]:
    """Points of each cell's curve (single RMs), ordered along KL."""
    out = defaultdict(list)
    for r in rows:
        if r.get("study") == "study" and r.get("aggregation") == "single":
            out[r["cell"]].append(r)
    return {k: sorted(v, key=lambda r: r["kl"]) for k, v in out.items()}


def _rm_cell(r: dict) -> str:
    return f"{r['rm_size']}-n{r['data_size']}-rho{r['label_noise']:g}-s{r['seed']}"


def _kl_at_gold(curve: list[dict], gold: float) -> float | None:
    """Smallest KL at which the curve's gold reaches `gold` (linear between points); None if it never does."""
    kl, g = np.array([r["kl"] for r in curve]), np.array([r["gold"] for r in curve])
    above = np.flatnonzero(g >= gold)
    if not above.size:
        return None
    j = above[0]
    return float(kl[0]) if j == 0 else float(np.interp(gold, [g[j - 1], g[j]], [kl[j - 1], kl[j]]))


def rl_rows(rows: list[dict]) -> list[dict]:
    """RL spends more KL than BoN for the same gold; a KL penalty acts like early stopping (≈ same frontier)."""
    curves = _curves(rows)
    policy = {c: pts for c, pts in curves.items() if pts[0].get("method") in ("rloo", "reinforce")}
    claim_kl, claim_pen = "RL spends more KL than BoN for the same gold", "≈ a KL penalty acts like early stopping"
    if not policy:
        why = "the study has no RL cells (policy.methods)"
        return [claim_row(claim_kl, why, "not measured"), claim_row(claim_pen, why, "not measured")]
    diffs = []
    for pts in policy.values():
        end, bon = pts[-1], curves.get(_rm_cell(pts[-1]))
        lo_g, hi_g = end["gold"] - Z95 * end["gold_se"], end["gold"] + Z95 * end["gold_se"]
        kl_lo, kl_hi = (_kl_at_gold(bon, g) if bon else None for g in (lo_g, hi_g))
        if kl_lo is not None and kl_hi is not None:
            diffs.append((end["kl"] - _kl_at_gold(bon, end["gold"]), end["kl"] - kl_hi, end["kl"] - kl_lo))
    out = [claim_row(claim_kl, f"KL(RL) − KL(BoN) at RL's final gold, smallest of {len(diffs)} runs: "
                          f"{fmt_estimate(min(diffs, key=lambda t: t[1]))}", verdict(*min(diffs, key=lambda t: t[1])[1:]))
           if diffs else claim_row(claim_kl, "BoN never reaches the RL runs' gold in this study", "inconclusive")]
    summaries = {(_rm_cell(r), r["method"], r["kl_penalty"]): r for r in rows
                 if r.get("study") == "study_cell" and r.get("method") in ("rloo", "reinforce")}
    return out + [penalty_row(claim_pen, policy, summaries)]


def kl_schedule_row(rows: list[dict]) -> dict:
    """Gao et al.: under RL, KL grows about quadratically in the steps. The mean over β = 0 runs (seeds and data
    sizes, independent proxies) of each run's log KL on log step slope, with a t interval over runs; ≈ 2
    within ±0.5 by the equivalence rule."""
    claim = "≈ KL grows about quadratically with RL steps (β_KL 0: exponent 2 ± 0.5)"
    runs = [r["kl_step_exponent"] for g in rl_groups(rows).values() for r in g
            if r["kl_penalty"] == 0 and r.get("kl_step_exponent") is not None]
    if len(runs) < 2:
        return claim_row(claim, "fewer than 2 β = 0 RL runs with a KL schedule", "not measured")
    m, half = float(np.mean(runs)), float(stats.t.ppf(0.975, len(runs) - 1) * np.std(runs, ddof=1) / np.sqrt(len(runs)))
    return claim_row(claim, f"slope of log KL on log step {m:.2f} [{m - half:.2f}, {m + half:.2f}] over {len(runs)} "
                            f"runs (each fitted over its evaluations with KL > 0)",
                     equivalence(m - 2 - half, m - 2 + half, margin=0.5), interval=(m - 2 - half, m - 2 + half))


def penalty_row(claim: str, policy: dict, summaries: dict | None = None) -> dict:
    """Gold of each β > 0 run minus the β = 0 run's gold at the same KL (interpolated), ± 1.96 combined SE;
    its regime: the β = 0 run past its gold peak (verdicts.past_peak on its summary row in `summaries`, keyed
    (RM cell, method, β); without one, its raw peak before its largest KL) in a majority of cells."""
    by_rm = defaultdict(dict)
    for pts in policy.values():
        by_rm[(_rm_cell(pts[0]), pts[0]["method"])][pts[0]["kl_penalty"]] = pts
    diffs, passed, frees = [], 0, 0
    for runs in by_rm.values():
        if 0.0 not in runs:
            continue
        free = runs[0.0]
        frees += 1
        summary = (summaries or {}).get((_rm_cell(free[0]), free[0]["method"], 0.0))
        passed += past_peak(summary) if summary else int(np.argmax([r["gold"] for r in free])) < len(free) - 1
        kl0, g0, se0 = (np.array([r[k] for r in free]) for k in ("kl", "gold", "gold_se"))
        for beta, pts in runs.items():
            end = pts[-1]
            if beta > 0 and kl0.min() <= end["kl"] <= kl0.max():
                d = end["gold"] - float(np.interp(end["kl"], kl0, g0))
                se = float(np.hypot(end["gold_se"], np.interp(end["kl"], kl0, se0)))
                diffs.append((d, d - Z95 * se, d + Z95 * se))
    if not diffs:
        return claim_row(claim, "needs RL runs at β_KL = 0 and β_KL > 0 whose final KL lies in the β = 0 run's range",
                    "not measured")
    widest = max(diffs, key=lambda t: abs(t[0]))
    reached = majority(passed, frees)  # early stopping means something only where the β = 0 run's gold peaked
    regime = f"β = 0 run past its gold peak in {passed}/{frees} cells" + ("" if reached else ": train it longer")
    return claim_row(claim, f"gold(β > 0) − gold(β = 0) at matched KL, largest of {len(diffs)}: {fmt_estimate(widest)}",
                     equivalence(widest[1], widest[2]) if reached else NOT_REACHED, regime=regime,
                     interval=widest[1:])


NOT_YET = [("WARM memorises fewer flipped labels than ENS", "run `goodhart claims` on a `goodhart rm suite` dir"),
           ("WARM-trained policy ≥ single-RM policy", "policy runs against WARM (issue 17)"),
           ("J-BOND beats RLOO at small KL", "the policy comparison grid (issue 17)"),
           ("BOND approaches the BoN frontier", "the policy comparison grid (issue 17)")]


def claims_table(rows: list[dict]) -> list[dict]:
    """Every claim row of a study's results (see the module docstring and RULE)."""
    groups = _cells(rows)
    if not groups and any(r.get("study") == "rm_suite" for r in rows):
        return suite_claims(rows)
    if not groups and any(r.get("study") == "policy_summary" for r in rows):
        return pareto_claims(rows)
    if not groups:
        raise GoodhartError("no Best-of-n study cells of single RMs, RM suite rows or policy pareto runs in the "
                            "results; is this a `goodhart study`, `goodhart rm suite` or `goodhart policy pareto` dir?")
    params = {r["rm_size"]: r["rm_params"] for g in groups.values() for r in g}
    max_n = bon_max_n(rows)
    out = fall_rows(groups, max_n) + trend_rows(groups, params) + [threshold_row(groups), heldout_row(groups),
                                                             seeds_row(groups)]
    out += rl_rows(rows) + rl_fall_rows(rows) + [kl_schedule_row(rows)]
    return out + [claim_row(c, f"not measured by `goodhart study`: {why}", "not measured") for c, why in NOT_YET]


def claims_markdown(table: list[dict]) -> str:
    lines = ["# Claims", "", f"Rule: {RULE}", "", "| claim | measured (95% interval) | regime | verdict | seeds |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['claim']} | {r['measured']} | {r['regime']} | **{r['verdict']}** | {r['seeds']} |" for r in table]
    return "\n".join(lines) + "\n"


def study_results(study_dir: str | Path) -> list[dict]:
    run = RunDir(study_dir)
    if not run.file(RESULTS).is_file():
        raise GoodhartError(f"{run.path} has no {RESULTS}; point claims at a `goodhart study`, `goodhart rm suite` "
                            "or `goodhart policy pareto` directory")
    return run.results()


def run_claims(study_dir: str | Path, extra=None) -> tuple[list[dict], Path]:
    """Build the claims table of `study_dir`, write claims.md there; (rows, path). `extra`: rows → more claim
    rows (size_claims: the policy-size rows against a second study), checked before anything is written."""
    rows = study_results(study_dir)
    more = extra(rows) if extra is not None else []
    table = claims_table(rows) + more
    path = RunDir(study_dir).file("claims.md")
    atomic_write_text(path, claims_markdown(table))
    return table, path
