"""Claims rows of `goodhart rm suite` (WARM, Ramé et al. 2024; Coste et al. 2024) for `goodhart claims`.

Paired classifier claims use the exact McNemar test on the same pairs with discordant counts summed over
seeds (report.suite_tables.pooled_tests); Best-of-n claims use paired prompt-bootstrap differences pooled
over seeds (pooled_bon_diffs). Each verdict follows the table's stated rule (report.verdicts.RULE).
"""

from goodhart.report.suite_tables import SETS, pooled_bon_diffs, pooled_tests
from goodhart.report.verdicts import NOT_REACHED, claim_row, majority, mcnemar_verdict, verdict


def _test_row(claim: str, tests: list[dict], kind: str, a: str, b: str, a_wins: bool, rho: float) -> dict:
    t = next((t for t in tests if t["set"] == kind and t["a"].startswith(a) and t["b"].startswith(b)
              and t["label_noise"] == rho), None)
    claim = f"{claim} (ρ = {rho:g})"
    if t is None:
        return claim_row(claim, f"no {SETS[kind]} pairs compared at this ρ", "not measured")
    d = t["diff"]
    ci = "" if d[1] is None else f" [{d[1]:+.3f}, {d[2]:+.3f}]"
    return claim_row(claim, f"{t['a']} vs {t['b']} on {t['pairs']} {SETS[kind]} pairs: right only {t['only_a']} vs "
                            f"{t['only_b']}, acc diff {d[0]:+.3f}{ci}, McNemar p {t['p']:.3g}",
                     mcnemar_verdict(t, a_wins), str(t["seeds"]), interval=None if d[1] is None else (d[1], d[2]))


def peaks_passed(rows: list[dict], rho: float, name: str, max_n: int) -> tuple[int, int]:
    """(seeds whose Best-of-n gold under `name` peaks before the pool's largest n, seeds measured) at ρ: the
    regime an overoptimisation claim needs (SPEC §11)."""
    got = [r for r in rows if r.get("study") == "rm_suite" and r["reward_model"] == name and r["label_noise"] == rho
           and r.get("bon_peak_n") is not None]
    return sum(r["bon_peak_n"] < max_n for r in got), len(got)


def _bon_row(claim: str, diffs: list[dict], a: str, stat: str, rho: float, rows: list[dict], max_n: int) -> dict:
    d = next((d for d in diffs if d["a"].startswith(a) and d["stat"] == stat and d["label_noise"] == rho), None)
    claim = f"{claim} (ρ = {rho:g})"
    if d is None:
        return claim_row(claim, "no paired Best-of-n difference (needs bon.bootstrap > 0)", "not measured")
    where = "each one's peak" if stat == "max" else "the largest n"
    e = d["diff"]
    measured = f"gold({d['a']}) − gold({d['b']}) at {where}: {e[0]:+.3f} [{e[1]:+.3f}, {e[2]:+.3f}]"
    if stat == "max":  # a comparison of peaks needs no overoptimisation
        return claim_row(claim, measured, verdict(e[1], e[2]), str(d["seeds"]), interval=e[1:])
    # "overoptimises less" needs the baseline to overoptimise: the ENS mean's gold past its peak in most seeds
    passed, known = peaks_passed(rows, rho, d["b"], max_n)
    single = peaks_passed(rows, rho, "member_0", max_n)
    reached = majority(passed, known)
    regime = (f"{d['b']} peak passed in {passed}/{known} seeds (a single member: {single[0]}/{single[1]})"
              + ("" if reached else ": its gold is highest at the pool's largest n, so there is no overoptimisation "
                 "to lessen (a larger pool, fewer comparisons or RL against it reaches it)"))
    return claim_row(claim, measured, verdict(e[1], e[2]) if reached else NOT_REACHED, str(d["seeds"]), regime,
                     interval=e[1:])


def suite_claims(rows: list[dict]) -> list[dict]:
    """The RM suite's claims, one row per claim and label-noise level."""
    tests, diffs = pooled_tests(rows), pooled_bon_diffs(rows)
    max_n = max((r["n"] for r in rows if r.get("study") == "bon"), default=0)  # the shared pool's largest n
    rhos = sorted({r["label_noise"] for r in rows if r.get("study") == "rm_suite"})
    noisy = [r for r in rhos if r > 0]
    out = [_test_row("WARM memorises fewer flipped labels than ENS", tests, "flip", "warm_M", "ens_mean", True, r)
           for r in noisy]
    out += [_test_row("WARM better OOD than ENS", tests, "ood", "warm_M", "ens_mean", True, r) for r in rhos]
    out += [_test_row("ENS better on clean labels than WARM", tests, "val", "warm_M", "ens_mean", False, r)
            for r in rhos]
    out += [_bon_row("WARM's Best-of-n gold ≥ ENS's", diffs, "warm_M", "max", r, rows, max_n) for r in rhos]
    out += [_bon_row(f"{w} overoptimises less than the ENS mean", diffs, w.lower(), "last", r, rows, max_n)
            for w in ("WCO", "UWO") for r in rhos]
    out += [_test_row("WARM of unrelated members fails (vs their ENS)", tests, "val", "warm_indep", "ens_indep", False,
                      r) for r in rhos]
    return out
