"""Claims rows of `goodhart policy pareto` (issue 17) for `goodhart claims`: every comparison is gold at
matched KL on the same evaluation prompts (report.matched), paired within a seed and pooled over seeds
(bon.prompt_stats.pooled, SPEC §11); verdicts by the stated rule (report.verdicts)."""

from collections import defaultdict

from goodhart.bon.prompt_stats import pooled
from goodhart.report.matched import common_d, curve, extra_kl, matched
from goodhart.report.verdicts import (
    NOT_REACHED,
    claim_row,
    equivalence,
    fmt_estimate,
    majority,
    past_peak,
    verdict,
)


def _pool(per_seed: dict) -> tuple[float, float, float]:
    got = list(per_seed.values())
    return pooled([g["diff"] for g in got], [g["diff_lo"] for g in got], [g["diff_hi"] for g in got])


def _pairs(curves: dict, a: str, b: str) -> dict:
    """{seed: matched(a, b) at the largest d both reach} over the seeds that have both runs."""
    return {s: matched(c[a], c[b], common_d(c[a], c[b]), seed=s) for s, c in curves.items() if a in c and b in c}


def _compare(claim: str, curves: dict, a: str, b: str, rule, why: str, need=None) -> dict:
    """gold(a) − gold(b) at matched d, pooled over seeds; `need`: seeds → (reached, regime text), the regime
    the claim needs (not reached: the verdict is `not reached`, whatever the interval)."""
    got = _pairs(curves, a, b)
    if not got:
        return claim_row(claim, why, "not measured")
    e = _pool(got)
    ds = ", ".join(f"{g['d']:.2f}" for g in got.values())
    reached, regime = need(list(got)) if need else (True, "")
    return claim_row(claim, f"gold({a}) − gold({b}) at matched d = {ds} (per seed): {fmt_estimate(e)}",
                     rule(e[1], e[2]) if reached else NOT_REACHED, ", ".join(map(str, got)), regime, interval=e[1:])


def _needs(summaries: dict, cell: str, what: str, why: str = "stopping early has nothing to match"):
    """A regime check over seeds for `cell`'s policy_summary rows, each by the majority rule over seeds:
    what = "trained" (not still rising: gold flat between its last two evaluations, or past its gold peak by
    verdicts.past_peak; a run still climbing measures under-training, not the method) or "past peak"."""
    def check(seeds: list) -> tuple[bool, str]:
        rows = [summaries[(s, cell)] for s in seeds if (s, cell) in summaries]
        peaked = [past_peak(r) for r in rows]
        if what == "trained":
            flat = [bool(r.get("converged")) for r in rows]
            ok = sum(f or p for f, p in zip(flat, peaked, strict=True))
            reached = majority(ok, len(rows))
            text = (f"{cell} not still rising in {ok}/{len(rows)} seeds (converged: gold flat between its last two "
                    f"evaluations, {sum(flat)}; past its gold peak, split-half, {sum(peaked)})")
            return reached, text + ("" if reached else ": train it longer")
        ok = sum(peaked)
        text = f"{cell} past its gold peak in {ok}/{len(rows)} seeds (split-half)"
        reached = majority(ok, len(rows))
        return reached, text + ("" if reached else f": its gold never peaked, so {why}")
    return check


def _curves(rows: list[dict]) -> dict:
    """{seed: {cell: curve}}, with each reward model's Best-of-n curve ("bon", "bon@<name>") in every seed."""
    runs, bon = defaultdict(list), defaultdict(list)
    for r in rows:
        if r.get("study") == "policy":
            (bon[r["cell"]] if r["method"] == "bon" else runs[(r["seed"], r["cell"])]).append(r)
    bon_curves = {name: curve(b) for name, b in bon.items()}  # one reference pool: the same in every seed
    out = defaultdict(lambda: dict(bon_curves))
    for (seed, cell), pts in runs.items():
        out[seed][cell] = curve(pts)
    return dict(out)


def _extra_kl_row(rows: list[dict], curves: dict) -> dict:
    claim = "RL spends more KL than BoN for the same gold"
    finals = {(r["seed"], r["cell"]): r["final_kl"] for r in rows if r.get("study") == "policy_summary"}
    got = {s: x for s, c in curves.items() if "rloo-beta0" in c
           and (x := extra_kl(c["rloo-beta0"], finals[(s, "rloo-beta0")], c["bon"], seed=s)) is not None}
    if not got:
        return claim_row(claim, "no rloo-beta0 run, or Best-of-n never reaches its final gold", "not measured")
    e = _pool(got)
    return claim_row(claim, f"KL(rloo-beta0) − KL(BoN) at RLOO's final gold: {fmt_estimate(e)} nats", verdict(e[1], e[2]),
                     ", ".join(map(str, got)), interval=e[1:])


def _jeffreys_row(curves: dict) -> dict:
    claim = "Jeffreys BOND lies between forward and backward"
    fwd, bwd = _pairs(curves, "bond-jeffreys", "bond-forward"), _pairs(curves, "bond-jeffreys", "bond-backward")
    if not fwd or not bwd:
        return claim_row(claim, "needs bond_divergences [forward, backward, jeffreys]", "not measured")
    f, b = _pool(fwd), _pool(bwd)
    signs = {1 if lo > 0 else -1 if hi < 0 else 0 for _, lo, hi in (f, b)}
    v = "reproduced" if signs == {1, -1} else "contradicted" if len(signs) == 1 and 0 not in signs else "inconclusive"
    return claim_row(claim, f"jeffreys − forward {fmt_estimate(f)}; jeffreys − backward {fmt_estimate(b)} (rule: reproduced when the two "
                       "exclude 0 with opposite signs, contradicted when with the same sign)", v, ", ".join(map(str, fwd)))


def pareto_claims(rows: list[dict]) -> list[dict]:
    """The policy grid's claims (issue 17 §2), one row per claim (and per β_KL > 0)."""
    curves = _curves(rows)
    summaries = {(r["seed"], r["cell"]): r for r in rows if r.get("study") == "policy_summary"}
    cells = sorted({c for cs in curves.values() for c in cs if c.split("@")[0] != "bon"})  # the policy runs
    out = [_extra_kl_row(rows, curves)]
    out += [_compare(f"≈ a KL penalty acts like early stopping (β_KL = {c[9:]})", curves, c, "rloo-beta0", equivalence,
                     "needs rloo-beta0", _needs(summaries, "rloo-beta0", "past peak"))
            for c in cells if c.startswith("rloo-beta") and c != "rloo-beta0"
            and "@" not in c]  # rloo-beta0@warm is the reward-model axis (rm_axis_rows), not a KL penalty
    out.append(_compare("J-BOND beats RLOO at matched KL", curves, "jbond-beta0", "rloo-beta0", verdict,
                        "needs jbond-beta0 and rloo-beta0 runs"))
    out += [_compare(f"≈ BOND approaches the BoN frontier ({c})", curves, c, "bon" + c[c.index("@"):] if "@" in c
                     else "bon", equivalence, "", _needs(summaries, c, "trained"))
            for c in cells if c.startswith(("bond-", "jbond-"))]
    out.append(_jeffreys_row(curves))
    return out + rm_axis_rows(cells, curves, summaries)


def rm_axis_rows(cells: list[str], curves: dict, summaries: dict) -> list[dict]:
    """Each <cell>@<rm> against <cell> on the main reward model, gold at matched KL (WARM's claim when the
    name says warm: its policies beat the single RM's). Its regime: the run on the main RM overoptimises
    (past its gold peak in most seeds), the failure the robust RM claims to lessen."""
    out = []
    for c in (c for c in cells if "@" in c):
        base, rm = c.split("@")
        claim = (f"WARM-trained policy ≥ single-RM policy ({base}: {rm} vs the main RM)" if "warm" in rm.lower()
                 else f"policy against {rm} ≥ against the main RM ({base})")
        out.append(_compare(claim, curves, c, base, verdict, f"needs the {base} run on the main RM",
                            _needs(summaries, base, "past peak", "the single RM never overoptimised (train longer)")))
    if not out:
        out.append(claim_row("WARM-trained policy ≥ single-RM policy", "the sweep has no reward-model axis: set "
                        "reward_models (e.g. {warm: runs/w}) and rm_axis_cells", "not measured"))
    return out
