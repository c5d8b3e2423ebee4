"""The one stated rule behind every verdict of `goodhart claims` (SPEC §11 "Verdicts"), applied
mechanically: to an interval (study claims) or to a paired McNemar test (RM-suite claims); before it, whether
the regime the claim needs was reached, and for an inconclusive interval, how large an effect it could see."""

import numpy as np
from scipy import stats

from goodhart.bon.prompt_stats import Z95, interval_sd

RULE = ("reproduced: the 95% interval excludes 0 in the claimed direction; contradicted: it excludes 0 in "
        "the other direction; inconclusive: it holds 0; not measured: the study has no rows for it (why is "
        "given). Equivalence claims (marked ≈) are reproduced when the interval lies within ±0.1 gold. "
        "Paired classifier claims (RM suite): reproduced when the exact McNemar p < 0.05 (discordant pairs "
        "summed over seeds) and the claimed model is right on more of them; contradicted when p < 0.05 the "
        "other way; inconclusive otherwise. Not reached: the regime the claim needs (its row's regime column: a "
        "curve past its peak, a policy no longer rising: converged or past its gold peak; each over seeds by "
        "majority) was not reached, so the interval cannot speak to the claim. "
        "An inconclusive interval states the smallest effect it detects with 80% power: (1.96 + 0.84) × its sd. "
        "Family rows (\"after Holm\"): Holm's step-down rule at family-wise 5% over the family's rows that reached "
        "their regime; reproduced when some survive in the claimed direction and none the other way, contradicted "
        "in the mirror case, inconclusive otherwise.")
ALPHA = 0.05
NOT_REACHED = "not reached"
POWER_Z = Z95 + 0.841621  # z_0.975 + z_0.80: a two-sided 5% test sees an effect this many sd away 80% of the time


def detectable(lo: float, hi: float) -> float:
    """The smallest |effect| a 95% interval [lo, hi] (read as normal) detects with 80% power."""
    return POWER_Z * interval_sd(lo, hi)


def interval_p(est: float, lo: float, hi: float, two_sided: bool = False) -> float:
    """p of "effect = 0" from an estimate and its 95% interval read as normal (sd = half-width / 1.96), for Holm
    over a family of intervals (SPEC §11): one-sided against "effect > 0" (the falls' family), or two-sided (the
    suite's families over ρ)."""
    sd = interval_sd(lo, hi)
    if not sd > 0:
        return float(est == 0) if two_sided else float(est <= 0)
    return float(2 * stats.norm.sf(abs(est) / sd)) if two_sided else float(stats.norm.sf(est / sd))


def holm(ps: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down rule: which hypotheses are rejected at family-wise level alpha."""
    order = np.argsort(ps)
    out = [False] * len(ps)
    for i, j in enumerate(order):
        if ps[j] > alpha / (len(ps) - i):
            break
        out[j] = True
    return out


def verdict(lo: float, hi: float, direction: int = 1) -> str:
    """The rule for a claim that the quantity is > 0 (direction 1) or < 0 (direction −1)."""
    lo, hi = (lo, hi) if direction > 0 else (-hi, -lo)
    return "reproduced" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"


def equivalence(lo: float, hi: float, margin: float = 0.1) -> str:
    """≈ 0 claims: reproduced inside ±margin; contradicted when the interval excludes 0; else inconclusive."""
    return "reproduced" if -margin < lo and hi < margin else "contradicted" if lo > 0 or hi < 0 else "inconclusive"


def mcnemar_verdict(test: dict, a_wins: bool = True) -> str:
    """reproduced: p < 0.05 and the claimed model (A if a_wins else B) is right on more discordant pairs."""
    if test["p"] >= ALPHA:
        return "inconclusive"
    return "reproduced" if (test["only_a"] > test["only_b"]) == a_wins else "contradicted"


def majority(passed: int, known: int) -> bool:
    """The regime rule over seeds: reached when more than half of the `known` seeds passed (none known: not)."""
    return known > 0 and 2 * passed > known


def past_peak(row: dict) -> bool:
    """A policy run's gold passed its peak, by the split-half rule (SPEC §11): the peak step chosen on half the
    evaluation prompts holds more gold than the last evaluation on the other half (the run's split-half `fall`
    point above 0), so noise at one evaluation does not make a peak. Rows without a split-half fall (fewer than
    4 evaluation prompts) fall back to the raw peak's position: before the last evaluation."""
    if row.get("fall") is not None:
        return row["fall"] > 0
    return row["peak_step"] < row.get("final_step", row["peak_step"] + 1)


def claim_row(claim: str, measured: str, verdict_: str, seeds: str = "", regime: str = "",
              interval: tuple[float, float] | None = None) -> dict:
    """One row of the claims table. `regime`: what the claim needs and whether it was reached; an
    inconclusive row with its `interval` (lo, hi) also states the effect its test could have detected."""
    if verdict_ == "inconclusive" and interval is not None:
        measured += f"; detects an effect of size ≥ {detectable(*interval):.2f} with 80% power"
    return {"claim": claim, "measured": measured, "regime": regime, "verdict": verdict_, "seeds": seeds}


def fmt_estimate(est) -> str:
    """(estimate, lo, hi) as "+0.123 [+0.010, +0.240]"."""
    return f"{est[0]:+.3f} [{est[1]:+.3f}, {est[2]:+.3f}]"
