"""The one stated rule behind every verdict of `goodhart claims` (SPEC §11 "Verdicts"), applied
mechanically: to an interval (study claims) or to a paired McNemar test (RM-suite claims)."""

RULE = ("reproduced: the 95% interval excludes 0 in the claimed direction; contradicted: it excludes 0 in "
        "the other direction; inconclusive: it holds 0; not measured: the study has no rows for it (why is "
        "given). Equivalence claims (marked ≈) are reproduced when the interval lies within ±0.1 gold. "
        "Paired classifier claims (RM suite): reproduced when the exact McNemar p < 0.05 (discordant pairs "
        "summed over seeds) and the claimed model is right on more of them; contradicted when p < 0.05 the "
        "other way; inconclusive otherwise.")
ALPHA = 0.05


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


def claim_row(claim: str, measured: str, verdict_: str, seeds: str = "") -> dict:
    """One row of the claims table."""
    return {"claim": claim, "measured": measured, "verdict": verdict_, "seeds": seeds}


def fmt_estimate(est) -> str:
    """(estimate, lo, hi) as "+0.123 [+0.010, +0.240]"."""
    return f"{est[0]:+.3f} [{est[1]:+.3f}, {est[2]:+.3f}]"
