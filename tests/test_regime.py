"""A verdict says whether the regime its claim needs was reached (SPEC §11): `not reached` for a curve that
never passed its peak and for a policy that had not converged, never `contradicted`; an inconclusive row
states the effect its test could have seen; the fall family is counted after Holm."""

import numpy as np

from goodhart.commands.claims import fall_rows, holm
from goodhart.commands.pareto_claims import _compare, _needs
from goodhart.commands.policy_train import regime
from goodhart.report.verdicts import NOT_REACHED, POWER_Z, detectable, equivalence, interval_p


def _cell(size: str, data: int, fall: tuple, peak_n: int, seeds=(0, 1)) -> list[dict]:
    return [{"rm_size": size, "data_size": data, "seed": s, "cell": f"{size}-{data}-s{s}", "peak_n": peak_n,
             "fall": fall[0], "fall_lo": fall[1], "fall_hi": fall[2], "proxy_at_max_n": 1.0} for s in seeds]


def test_a_curve_that_never_passed_its_peak_is_not_reached_and_the_family_counts_after_holm():
    groups = {("s", 64): _cell("s", 64, (0.0, -0.1, 0.1), peak_n=1024),  # gold highest at the pool's end
              ("s", 512): _cell("s", 512, (0.5, 0.3, 0.7), peak_n=128),
              ("l", 512): _cell("l", 512, (0.05, -0.2, 0.3), peak_n=256)}
    max_n = {r["cell"]: 1024 for g in groups.values() for r in g}
    rows = {r["claim"]: r for r in fall_rows(groups, max_n)}
    never = rows["proxy rises while gold peaks and falls (s, 64 comparisons)"]
    assert never["verdict"] == NOT_REACHED and "peak passed in 0/2 seeds" in never["regime"]
    assert rows["proxy rises while gold peaks and falls (s, 512 comparisons)"]["verdict"] == "reproduced"
    small = rows["proxy rises while gold peaks and falls (l, 512 comparisons)"]
    assert small["verdict"] == "inconclusive" and "detects an effect of size ≥" in small["measured"]
    family = rows["falls across the grid, after Holm over its cells (family-wise 5%)"]
    assert family["measured"].startswith("1 of 2 cells claim a fall after Holm (s, 512 comparisons)")
    assert {c for c in rows if c.startswith("gold falls after its peak, pooled")} == {
        "gold falls after its peak, pooled over RM sizes (64 comparisons)",
        "gold falls after its peak, pooled over RM sizes (512 comparisons)"}


def test_holm_hand_values_and_the_detectable_effect():
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]  # 0.01 ≤ 0.05/3; 0.03 > 0.05/2 stops
    assert holm([0.01, 0.02, 0.04]) == [True, True, True]  # 0.01 ≤ 0.0167, 0.02 ≤ 0.025, 0.04 ≤ 0.05
    assert holm([0.2]) == [False]
    # a 95% interval ±0.196 is a normal of sd 0.1: 80% power at (1.96 + 0.84) sd = 0.28
    assert abs(detectable(-0.196, 0.196) - 0.28) < 0.001 and abs(POWER_Z - 2.8016) < 1e-3
    # est 0.2 with that interval (0.004, 0.396) is 2 sd above 0: one-sided p = 1 − Φ(2) = 0.02275, two-sided 0.0455
    assert abs(interval_p(0.2, 0.004, 0.396) - 0.02275) < 1e-4
    assert abs(interval_p(0.2, 0.004, 0.396, two_sided=True) - 0.0455) < 1e-4
    assert interval_p(-0.1, -0.1, -0.1) == 1.0 and interval_p(0.0, 0.0, 0.0, two_sided=True) == 1.0


def _policy(slope_end: float, P: int = 16, L: int = 6, seed: int = 0) -> np.ndarray:
    """(P, L) per-prompt gold: rises 0.4 an evaluation, then by `slope_end` over the last step."""
    rng = np.random.default_rng(seed)
    truth = np.r_[0.4 * np.arange(L - 1), 0.4 * (L - 2) + slope_end]
    return truth + rng.normal(0, 0.3, (P, 1)) + rng.normal(0, 0.1, (P, L))


def test_a_run_still_climbing_is_not_converged_and_its_bond_row_is_not_reached():
    assert not regime(_policy(0.4))["converged"] and regime(_policy(0.0))["converged"]
    d = np.arange(6) * 0.5
    curves = {s: {"bond-forward": (d, _policy(0.4, seed=s)), "bon": (d, _policy(0.0, seed=9))} for s in (0, 1, 2)}

    def row(ends):  # one seed's run per end slope: 0.4 still climbing, 0 flat, −2 fallen after its peak
        summaries = {(s, "bond-forward"): regime(_policy(e, seed=s)) | {"peak_step": 4, "final_step": 5}
                     for s, e in enumerate(ends)}
        return _compare("≈ BOND approaches the BoN frontier (bond-forward)", curves, "bond-forward", "bon",
                        equivalence, "", _needs(summaries, "bond-forward", "trained"))

    climbing = row([0.4, 0.4, 0.0])
    assert climbing["verdict"] == NOT_REACHED and "not still rising in 1/3 seeds" in climbing["regime"], climbing
    assert "train it longer" in climbing["regime"]
    flat = row([0.0, 0.0, 0.4])
    assert flat["verdict"] != NOT_REACHED and "not still rising in 2/3 seeds (converged" in flat["regime"], flat
    fallen = row([-2.0, -2.0, 0.4])  # gold moved (not converged) but down, after its peak: trained far enough
    assert fallen["verdict"] != NOT_REACHED and "past its gold peak, split-half, 2)" in fallen["regime"], fallen


def test_rl_falls_are_pooled_over_seeds_and_a_run_still_rising_is_not_reached():
    """Two seeds of a run whose gold peaks at step 20 of 40 and falls 1.0 ± 0.1 → reproduced; the same cell
    at another β whose peak is its last step in both seeds → not reached; cells with no fall are left out."""
    from goodhart.commands.claims import rl_fall_rows

    def cell(beta, seed, peak_step, fall=1.0):
        return {"study": "study_cell", "method": "rloo", "kl_penalty": beta, "rm_size": "full", "data_size": 64,
                "seed": seed, "peak_step": peak_step, "final_step": 40, "final_kl": 30.0, "proxy_at_max_n": 2.0,
                "fall": fall, "fall_lo": fall - 0.1, "fall_hi": fall + 0.1}

    rows = [cell(0.0, 0, 20), cell(0.0, 1, 20), cell(0.05, 0, 40, 0.0), cell(0.05, 1, 40, 0.0),
            {"study": "study_cell", "method": "rloo", "kl_penalty": 0.1, "rm_size": "full", "data_size": 64}]
    got = {r["claim"]: r for r in rl_fall_rows(rows)}
    assert len(got) == 2
    falls = got["under RLOO (β_KL 0) the proxy rises while gold peaks and falls (full, 64 comparisons)"]
    assert falls["verdict"] == "reproduced" and falls["seeds"] == "0, 1" and "2/2 seeds" in falls["regime"]
    assert "+1.0" in falls["measured"]
    rising = got["under RLOO (β_KL 0.05) the proxy rises while gold peaks and falls (full, 64 comparisons)"]
    assert rising["verdict"] == NOT_REACHED and "0/2 seeds" in rising["regime"]


def test_an_rm_suite_overoptimisation_row_is_not_reached_while_the_ens_mean_still_rises():
    """"WCO overoptimises less than the ENS mean" needs the ENS mean past its Best-of-n peak in most seeds; the
    same difference is judged by its interval once it is, and a comparison of peaks needs no such regime."""
    from goodhart.commands.suite_claims import suite_claims

    def rows(peak_n):
        out = [{"study": "bon", "n": n} for n in (1, 4, 16)]
        out += [{"study": "rm_suite", "reward_model": m, "label_noise": 0.0, "seed": s, "bon_peak_n": p}
                for s, p in enumerate(peak_n) for m in ("ens_mean_M4", "member_0")]
        out += [{"study": "rm_suite_bon_diff", "a": f"{a}_M4", "b": "ens_mean_M4", "stat": st, "label_noise": 0.0,
                 "seed": s, "diff": 0.3, "diff_lo": 0.2, "diff_hi": 0.4}
                for s in range(len(peak_n)) for a, st in (("wco", "last"), ("uwo", "last"), ("warm", "max"))]
        return {r["claim"]: r for r in suite_claims(out)}

    rising = rows([16, 16, 4])
    wco = rising["WCO overoptimises less than the ENS mean (ρ = 0)"]
    assert wco["verdict"] == NOT_REACHED and "peak passed in 1/3 seeds" in wco["regime"]
    assert rising["WARM's Best-of-n gold ≥ ENS's (ρ = 0)"]["verdict"] == "reproduced"
    passed = rows([4, 4, 16])["WCO overoptimises less than the ENS mean (ρ = 0)"]
    assert passed["verdict"] == "reproduced" and "peak passed in 2/3 seeds" in passed["regime"]
    family = "WCO overoptimises less than the ENS mean, after Holm over ρ (family-wise 5%)"
    assert rising[family]["verdict"] == NOT_REACHED  # its only level did not reach the regime: no evidence
    assert rows([4, 4, 16])[family]["verdict"] == "reproduced"


def test_the_suite_family_row_applies_holm_over_the_noise_levels_by_hand():
    from goodhart.commands.suite_claims import family_row

    # p sorted 0.001 ≤ 0.05/3 kept; 0.03 > 0.05/2 stops: one level survives, in the claimed direction
    row = family_row("c", [(0.1, 0.03, True), (0.25, 0.001, True), (0.4, 0.04, False)], 3)
    assert row["verdict"] == "reproduced" and row["measured"].startswith("1 of 3 noise levels survive Holm in the "
                                                                         "claimed direction (ρ = 0.25)")
    both = family_row("c", [(0.0, 0.01, False), (0.1, 0.02, True)], 2)  # 0.01 ≤ 0.025, 0.02 ≤ 0.05: both survive
    assert both["verdict"] == "inconclusive" and "1 the other way (ρ = 0)" in both["measured"]
    assert family_row("c", [(0.0, 0.01, False)], 1)["verdict"] == "contradicted"
    assert family_row("c", [(0.0, 0.2, True), (0.1, 0.04, True)], 2)["verdict"] == "inconclusive"  # 0.04 > 0.025
    none = family_row("c", [], 4)  # no level reached the claim's regime: the family is not reached, and says so
    assert none["verdict"] == NOT_REACHED and "none of its 4 noise levels" in none["regime"]


def test_a_warm_policy_row_is_not_reached_while_the_single_rm_run_never_peaked():
    """WARM's policy claim needs the run on the single RM to overoptimise (past its gold peak in most seeds)."""
    from goodhart.commands.pareto_claims import rm_axis_rows

    d = np.arange(6) * 0.5
    curves = {0: {"rloo-beta0": (d, _policy(0.4)), "rloo-beta0@warm": (d, _policy(0.4, seed=1))}}
    summaries = {(0, "rloo-beta0"): {"peak_step": 5, "final_step": 5}}
    row, = rm_axis_rows(["rloo-beta0", "rloo-beta0@warm"], curves, summaries)
    assert row["verdict"] == NOT_REACHED and "past its gold peak in 0/1 seeds" in row["regime"]
    assert "single RM never overoptimised" in row["regime"]
    summaries[(0, "rloo-beta0")]["peak_step"] = 3
    row, = rm_axis_rows(["rloo-beta0", "rloo-beta0@warm"], curves, summaries)
    assert row["verdict"] != NOT_REACHED and row["claim"].startswith("WARM-trained policy ≥ single-RM policy")


def test_a_peak_made_by_one_prompt_is_not_past_peak_under_the_split_half_rule():
    """Gold rising 0.1 an evaluation, one prompt of 16 with a +20 spike at evaluation 3: the mean curve's raw
    peak is evaluation 3, before the last, but the split-half rule (peak chosen on half the prompts, scored on
    the others) sees a rising curve, so the WARM row that needs the single RM past its peak is not reached; a
    curve that truly falls 1.0 after evaluation 3 passes."""
    from goodhart.commands.pareto_claims import rm_axis_rows
    from goodhart.report.verdicts import past_peak

    rng = np.random.default_rng(0)
    rising = 0.1 * np.arange(6) + rng.normal(0, 0.05, (16, 6))
    rising[0, 3] += 20.0
    assert int(np.argmax(rising.mean(axis=0))) == 3
    spiked = {"peak_step": 3, "final_step": 5} | regime(rising)
    assert not past_peak(spiked) and past_peak({"peak_step": 3, "final_step": 5})  # the raw rule is fooled
    falling = np.r_[0.1 * np.arange(4), 0.3 - 0.5, 0.3 - 1.0] + rng.normal(0, 0.05, (16, 6))
    assert past_peak({"peak_step": 3, "final_step": 5} | regime(falling))

    d = np.arange(6) * 0.5
    curves = {0: {"rloo-beta0": (d, rising), "rloo-beta0@warm": (d, falling)}}
    row, = rm_axis_rows(["rloo-beta0", "rloo-beta0@warm"], curves, {(0, "rloo-beta0"): spiked})
    assert row["verdict"] == NOT_REACHED and "0/1 seeds (split-half)" in row["regime"]


def test_the_kl_schedule_row_is_equivalence_to_a_quadratic_over_beta_zero_runs():
    from goodhart.commands.claims import kl_schedule_row

    def rows(exps, beta=0.0):
        return [{"study": "study_cell", "method": "rloo", "kl_penalty": beta, "rm_size": "full", "data_size": 64,
                 "seed": s, "fall": 0.1, "kl_step_exponent": e} for s, e in enumerate(exps)]

    claim = "≈ KL grows about quadratically with RL steps (β_KL 0: exponent 2 ± 0.5)"
    near = kl_schedule_row(rows([2.1, 1.9, 2.0]))  # mean 2.0, t interval ±0.25: inside 2 ± 0.5
    assert near["claim"] == claim and near["verdict"] == "reproduced" and "2.00 [1.75, 2.25]" in near["measured"]
    assert kl_schedule_row(rows([1.0, 1.1, 0.9]))["verdict"] == "contradicted"  # linear, interval excludes 2
    assert kl_schedule_row(rows([1.0, 3.0, 2.0]))["verdict"] == "inconclusive"  # ±2.48: holds 2, wider than ±0.5
    assert kl_schedule_row(rows([2.0, 2.0], beta=0.05))["verdict"] == "not measured"  # no β = 0 runs
