"""Gao et al.'s policy-size claims from two `goodhart study` runs of the same grid on two policy sizes (the lab
world and lab-small: the same gold, the same proxy family, another policy): a larger policy gains less gold
from optimisation and overoptimises about as much. Compared in raw gold units (each study's pool has its own
standardisation, recorded on its oracle row), per data size, pooled over the RM sizes both studies have and
their seeds; the two studies are independent (other policies, other pools), so the difference's interval
combines their intervals."""

from pathlib import Path

import numpy as np

from goodhart.bon.prompt_stats import Z95, interval_sd
from goodhart.commands.claims import (
    _cells,
    _peak_passed,
    _pool_key,
    bon_max_n,
    rl_groups,
    run_claims,
    study_results,
)
from goodhart.errors import GoodhartError
from goodhart.report.verdicts import (
    NOT_REACHED,
    claim_row,
    equivalence,
    fmt_estimate,
    majority,
    past_peak,
    verdict,
)


def pool_facts(rows: list[dict]) -> dict | None:
    """The study's oracle (gold-selected) summary row, which carries the pool's gold scale and the policy size."""
    return next((r for r in rows if r.get("study") == "study_cell" and r.get("aggregation") == "gold"
                 and r.get("gold_scale")), None)


def _raw(est: tuple | None, scale: float) -> tuple | None:
    return None if est is None else tuple(scale * x for x in est)


def _diff(a: tuple, b: tuple) -> tuple[float, float, float]:
    """a − b of two independent (estimate, lo, hi), the interval from the sum of their variances."""
    d, sd = a[0] - b[0], float(np.hypot(interval_sd(a[1], a[2]), interval_sd(b[1], b[2])))
    return d, d - Z95 * sd, d + Z95 * sd


def _margin(facts: tuple) -> float:
    """The equivalence margin in raw gold: ±0.1 of the smaller policy's pool sd (the claims' ±0.1 gold)."""
    return 0.1 * facts[1]["gold_scale"]


def policy_name(facts: dict) -> str:
    """The policy of a study's pool facts: its world and size."""
    return f"{facts['world']} ({facts['policy_params'] / 1e6:.2f}M)"


def policy_size_rows(large: list[dict], small: list[dict]) -> list[dict]:
    """One row per data size and claim, comparing the larger policy's study (`large`, its results rows) with
    the smaller one's (`small`)."""
    claims = ("a larger policy gains less gold from Best-of-n", "≈ a larger policy overoptimises about as much "
              "under Best-of-n", "≈ a larger policy overoptimises about as much under RL")
    facts = (pool_facts(large), pool_facts(small))
    if None in facts:
        why = ("needs both studies' oracle rows with the pool's gold standardisation (a study run by this version; "
               "rerun the older one's oracle cell)")
        return [claim_row(c, why, "not measured") for c in claims]
    names = " vs ".join(map(policy_name, facts))
    groups = (_cells(large), _cells(small))
    common = sorted(set(groups[0]) & set(groups[1]), key=lambda k: (k[1], k[0]))
    max_n = [bon_max_n(rows) for rows in (large, small)]
    out = []
    for data in sorted({d for _, d in common}):
        sizes = [s for s, d in common if d == data]
        cells = [[r for s in sizes for r in g[(s, data)]] for g in groups]
        scope = f"{data} comparisons, RM sizes {', '.join(sizes)}"
        gains = [_raw(_pool_key(c, "peak_gold", "peak_gold_lo", "peak_gold_hi"), f["gold_scale"])
                 for c, f in zip(cells, facts, strict=True)]
        falls = [_raw(_pool_key(c, "fall", "fall_lo", "fall_hi"), f["gold_scale"]) for c, f in zip(cells, facts,
                                                                                                  strict=True)]
        if None not in gains:
            e = _diff(*gains)
            out.append(claim_row(f"{claims[0]} ({scope})", f"peak gold gain (raw gold) {names}: {e[0]:+.3f} "
                                 f"[{e[1]:+.3f}, {e[2]:+.3f}] ({gains[0][0]:+.3f} vs {gains[1][0]:+.3f})",
                                 verdict(e[1], e[2], direction=-1), regime=names, interval=e[1:]))
        if None not in falls:
            passed = [_peak_passed(c, m) for c, m in zip(cells, max_n, strict=True)]
            reached = all(majority(*p) for p in passed)
            regime = (f"peak passed in {passed[0][0]}/{passed[0][1]} and {passed[1][0]}/{passed[1][1]} seed-cells"
                      + ("" if reached else ": one policy's gold is highest at the pool's largest n, so there is "
                         "no overoptimisation to compare (a larger pool or RL reaches it)"))
            e = _diff(*falls)
            out.append(claim_row(f"{claims[1]} ({scope})", f"gold(peak) − gold(max n), raw gold, {names}: "
                                 f"{fmt_estimate(e)} ({falls[0][0]:+.3f} vs {falls[1][0]:+.3f}; margin "
                                 f"±{_margin(facts):.3f})",
                                 equivalence(e[1], e[2], _margin(facts)) if reached else NOT_REACHED,
                                 regime=regime, interval=e[1:]))
    return out + _rl_rows(claims[2], large, small, facts, names)


def _rl_rows(claim: str, large: list[dict], small: list[dict], facts: tuple, names: str) -> list[dict]:
    """The split-half fall of gold after its peak under RL, at each (method, β, RM size, data size) both have.
    A policy cell's gold is standardised on its own initial samples of the same evaluation prompts, not on the
    pool; it is converted with the pool's scale (both are the initial policy's samples of those prompts)."""
    got = (rl_groups(large), rl_groups(small))
    rows = []
    for key in sorted(set(got[0]) & set(got[1])):
        method, beta, size, data = key
        pair = [got[i][key] for i in (0, 1)]
        falls = [_raw(_pool_key(g, "fall", "fall_lo", "fall_hi"), f["gold_scale"]) for g, f in zip(pair, facts,
                                                                                                   strict=True)]
        passed = [(sum(map(past_peak, g)), len(g)) for g in pair]
        reached = all(majority(*p) for p in passed)
        regime = (f"past the gold peak (split-half) in {passed[0][0]}/{passed[0][1]} and {passed[1][0]}/"
                  f"{passed[1][1]} seeds" + ("" if reached else ": train longer"))
        e = _diff(*falls)
        rows.append(claim_row(f"{claim} ({method.upper()} β_KL {beta:g}, {size}, {data} comparisons)",
                              f"gold(peak) − gold(last step), raw gold, {names}: {fmt_estimate(e)} "
                              f"({falls[0][0]:+.3f} vs {falls[1][0]:+.3f}; margin ±{_margin(facts):.3f})",
                              equivalence(e[1], e[2], _margin(facts)) if reached else NOT_REACHED,
                              regime=regime, interval=e[1:]))
    if not rows:
        rows.append(claim_row(claim, "needs RL cells at the same (method, β, RM size, data size) in both studies",
                              "not measured"))
    return rows


def run_size_claims(study_dir, smaller_policy) -> tuple[list[dict], Path]:
    """`goodhart claims STUDY_DIR --smaller-policy DIR`: the study's claims and the policy-size rows."""
    small = study_results(smaller_policy)

    def extra(rows: list[dict]) -> list[dict]:
        if not _cells(rows) or not _cells(small):
            raise GoodhartError("--smaller-policy compares two `goodhart study` directories of the same grid; "
                                f"{smaller_policy if _cells(rows) else study_dir} has no Best-of-n study cells")
        return policy_size_rows(rows, small)

    return run_claims(study_dir, extra)
