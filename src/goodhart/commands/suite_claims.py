"""Claims rows of `goodhart rm suite` (WARM, Ramé et al. 2024; Coste et al. 2024) for `goodhart claims`.

Paired classifier claims use the exact McNemar test on the same pairs with discordant counts summed over
seeds (report.suite_tables.pooled_tests); Best-of-n claims use paired prompt-bootstrap differences pooled
over seeds (pooled_bon_diffs). Each verdict follows the table's stated rule (report.verdicts.RULE). Each
claim's rows over the label-noise levels are one family: a last row counts the levels whose test survives Holm
over the levels measured in the claim's regime (family-wise 5%), so four chances at p < 0.05 are not read as four
findings.
"""

from goodhart.report.suite_tables import SETS, pooled_bon_diffs, pooled_tests
from goodhart.report.verdicts import (
    NOT_REACHED,
    claim_row,
    holm,
    interval_p,
    majority,
    mcnemar_verdict,
    verdict,
)


def _test_row(claim: str, tests: list[dict], kind: str, a: str, b: str, a_wins: bool, rho: float) -> tuple:
    """(the row, its evidence for the family: (ρ, two-sided p, whether it points the claimed way), or None)."""
    t = next((t for t in tests if t["set"] == kind and t["a"].startswith(a) and t["b"].startswith(b)
              and t["label_noise"] == rho), None)
    claim = f"{claim} (ρ = {rho:g})"
    if t is None:
        return claim_row(claim, f"no {SETS[kind]} pairs compared at this ρ", "not measured"), None
    d = t["diff"]
    ci = "" if d[1] is None else f" [{d[1]:+.3f}, {d[2]:+.3f}]"
    row = claim_row(claim, f"{t['a']} vs {t['b']} on {t['pairs']} {SETS[kind]} pairs: right only {t['only_a']} vs "
                           f"{t['only_b']}, acc diff {d[0]:+.3f}{ci}, McNemar p {t['p']:.3g}",
                    mcnemar_verdict(t, a_wins), str(t["seeds"]), interval=None if d[1] is None else (d[1], d[2]))
    return row, (rho, t["p"], (t["only_a"] > t["only_b"]) == a_wins)


def family_row(claim: str, evidence: list, levels: int) -> dict:
    """Holm over one claim's noise levels: reproduced when some level survives in the claimed direction and none
    the other way, contradicted in the mirror case, inconclusive otherwise (none survive, or both directions);
    not reached when none of its `levels` rows reached the claim's regime."""
    claim = f"{claim}, after Holm over ρ (family-wise 5%)"
    if not evidence:
        return claim_row(claim, "no noise level measured in the claim's regime", NOT_REACHED,
                         regime=f"reached at none of its {levels} noise levels (each level's row says why)")
    kept = holm([p for _, p, _ in evidence])
    way = [f"{rho:g}" for (rho, _, ok), k in zip(evidence, kept, strict=True) if k and ok]
    other = [f"{rho:g}" for (rho, _, ok), k in zip(evidence, kept, strict=True) if k and not ok]
    measured = (f"{len(way)} of {len(evidence)} noise levels survive Holm in the claimed direction (ρ = "
                f"{', '.join(way) or 'none'})" + (f", {len(other)} the other way (ρ = {', '.join(other)})" if other else ""))
    v = ("reproduced" if way and not other else "contradicted" if other and not way else "inconclusive")
    return claim_row(claim, measured, v, regime=f"{len(evidence)} noise levels measured in the claim's regime")


def peaks_passed(rows: list[dict], rho: float, name: str, max_n: int) -> tuple[int, int]:
    """(seeds whose Best-of-n gold under `name` peaks before the pool's largest n, seeds measured) at ρ: the
    regime an overoptimisation claim needs (SPEC §11)."""
    got = [r for r in rows if r.get("study") == "rm_suite" and r["reward_model"] == name and r["label_noise"] == rho
           and r.get("bon_peak_n") is not None]
    return sum(r["bon_peak_n"] < max_n for r in got), len(got)


def _bon_row(claim: str, diffs: list[dict], a: str, stat: str, rho: float, rows: list[dict], max_n: int) -> tuple:
    """(the row, its family evidence as in _test_row, or None when not measured or not reached)."""
    d = next((d for d in diffs if d["a"].startswith(a) and d["stat"] == stat and d["label_noise"] == rho), None)
    claim = f"{claim} (ρ = {rho:g})"
    if d is None:
        return claim_row(claim, "no paired Best-of-n difference (needs bon.bootstrap > 0)", "not measured"), None
    where = "each one's peak" if stat == "max" else "the largest n"
    e = d["diff"]
    measured = f"gold({d['a']}) − gold({d['b']}) at {where}: {e[0]:+.3f} [{e[1]:+.3f}, {e[2]:+.3f}]"
    evidence = (rho, interval_p(*e, two_sided=True), e[0] > 0)
    if stat == "max":  # a comparison of peaks needs no overoptimisation
        return claim_row(claim, measured, verdict(e[1], e[2]), str(d["seeds"]), interval=e[1:]), evidence
    # "overoptimises less" needs the baseline to overoptimise: the ENS mean's gold past its peak in most seeds
    passed, known = peaks_passed(rows, rho, d["b"], max_n)
    single = peaks_passed(rows, rho, "member_0", max_n)
    reached = majority(passed, known)
    regime = (f"{d['b']} peak passed in {passed}/{known} seeds (a single member: {single[0]}/{single[1]})"
              + ("" if reached else ": its gold is highest at the pool's largest n, so there is no overoptimisation "
                 "to lessen (a larger pool, fewer comparisons or RL against it reaches it)"))
    row = claim_row(claim, measured, verdict(e[1], e[2]) if reached else NOT_REACHED, str(d["seeds"]), regime,
                    interval=e[1:])
    return row, evidence if reached else None


def _family(claim: str, results: list[tuple]) -> list[dict]:
    """One claim's per-ρ rows, then its Holm row over the levels with evidence."""
    return [row for row, _ in results] + [family_row(claim, [e for _, e in results if e is not None], len(results))]


def suite_claims(rows: list[dict]) -> list[dict]:
    """The RM suite's claims, one row per claim and label-noise level, and per claim its family row over ρ."""
    tests, diffs = pooled_tests(rows), pooled_bon_diffs(rows)
    max_n = max((r["n"] for r in rows if r.get("study") == "bon"), default=0)  # the shared pool's largest n
    rhos = sorted({r["label_noise"] for r in rows if r.get("study") == "rm_suite"})
    noisy = [r for r in rhos if r > 0]
    tested = [("WARM memorises fewer flipped labels than ENS", "flip", "warm_M", "ens_mean", True, noisy),
              ("WARM better OOD than ENS", "ood", "warm_M", "ens_mean", True, rhos),
              ("ENS better on clean labels than WARM", "val", "warm_M", "ens_mean", False, rhos)]
    out = []
    for claim, kind, a, b, a_wins, levels in tested:
        out += _family(claim, [_test_row(claim, tests, kind, a, b, a_wins, r) for r in levels])
    claim = "WARM's Best-of-n gold ≥ ENS's"
    out += _family(claim, [_bon_row(claim, diffs, "warm_M", "max", r, rows, max_n) for r in rhos])
    for w in ("WCO", "UWO"):
        claim = f"{w} overoptimises less than the ENS mean"
        out += _family(claim, [_bon_row(claim, diffs, w.lower(), "last", r, rows, max_n) for r in rhos])
    claim = "WARM of unrelated members fails (vs their ENS)"
    return out + _family(claim, [_test_row(claim, tests, "val", "warm_indep", "ens_indep", False, r) for r in rhos])
