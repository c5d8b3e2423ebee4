"""Gold at matched KL: paired comparisons of policy runs and the Best-of-n curve measured on the same
evaluation prompts (issue 17; SPEC §11 "Paired differences").

A curve is one run's evaluation rows (or a reference pool's Best-of-n rows): d = sqrt(KL) per point and
the gold of every evaluation prompt at that point (`gold_prompts`, normalised in one set of units). Gold
at a chosen d* is read off each prompt's curve by linear interpolation in d, so two runs compare on the
same prompts at the same d*, and the interval resamples those prompts (paired_difference).
"""

import numpy as np

from goodhart.bon.prompt_stats import paired_difference, resample_means
from goodhart.errors import GoodhartError


def curve(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(d (L,), per-prompt gold (P, L)) of one run's rows, ordered by d."""
    pts = sorted((r for r in rows if r.get("gold_prompts")), key=lambda r: r["d"])
    if len(pts) < 2:
        raise GoodhartError("a matched-KL comparison needs ≥ 2 evaluation rows with per-prompt gold")
    return np.array([r["d"] for r in pts]), np.array([r["gold_prompts"] for r in pts], dtype=np.float64).T


def gold_at(c: tuple[np.ndarray, np.ndarray], dstar: float) -> np.ndarray:
    """(P,) gold of every prompt at d*, interpolated linearly between the run's evaluations (d* inside them)."""
    d, g = c
    if not d[0] - 1e-12 <= dstar <= d[-1] + 1e-12:
        raise GoodhartError(f"d* = {dstar:.3f} lies outside the run's range [{d[0]:.3f}, {d[-1]:.3f}]")
    return np.array([np.interp(dstar, d, row) for row in g])


def common_d(*curves) -> float:
    """The largest d that every curve reaches (where their KL ranges overlap at the top)."""
    return float(min(c[0][-1] for c in curves))


def matched(a, b, dstar: float, n_boot: int = 1000, seed: int = 0) -> dict:
    """gold(a) − gold(b) at d*, paired over prompts: {"diff", "diff_lo", "diff_hi", "d"}."""
    ga, gb = gold_at(a, dstar)[:, None], gold_at(b, dstar)[:, None]
    if ga.shape != gb.shape:
        raise GoodhartError(f"runs measured on different prompts ({ga.shape[0]} vs {gb.shape[0]})")
    return paired_difference(ga, gb, "last", n_boot, seed) | {"d": dstar}


def kl_to_reach(bon, gold: float) -> float | None:
    """KL the Best-of-n mean curve spends to reach `gold` (None when it never does)."""
    d, g = bon[0], bon[1].mean(axis=0)
    above = np.flatnonzero(g >= gold)
    if not above.size:
        return None
    j = int(above[0])
    if j == 0:
        return float(d[0] ** 2)
    t = (gold - g[j - 1]) / (g[j] - g[j - 1])
    return float((d[j - 1] + t * (d[j] - d[j - 1])) ** 2)


def extra_kl(policy, kl_final: float, bon, n_boot: int = 1000, seed: int = 0) -> dict | None:
    """KL(policy) − KL(BoN) at the policy's final gold, with an interval from resampling the shared
    prompts (the policy's final gold and the BoN curve move together); None if BoN never gets there."""
    final = policy[1][:, -1]
    base = kl_to_reach(bon, float(final.mean()))
    if base is None:
        return None
    finals = resample_means(final[:, None], n_boot, seed)[:, 0]
    curves = resample_means(bon[1], n_boot, seed)
    draws = [kl_to_reach((bon[0], c[None, :]), f) for f, c in zip(finals, curves, strict=True)]
    draws = np.array([kl_final - (k if k is not None else np.inf) for k in draws])
    return {"diff": kl_final - base, "diff_lo": float(np.percentile(draws, 2.5)),
            "diff_hi": float(np.percentile(draws, 97.5))}
