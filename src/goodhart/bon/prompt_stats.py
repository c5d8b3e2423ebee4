"""Statistics whose unit of replication is the prompt (SPEC §11): the Gao fit of a mean curve with
prompt-bootstrap intervals, the paired "fall after the peak", and the held-out test of a fitted form.

Shapes: P prompts, L points of the curve (one per n or per evaluation step), B bootstrap resamples.
Every resample draws P prompts with replacement and recomputes the statistic on their mean curve.
"""

import numpy as np
from scipy import stats

from goodhart.errors import GoodhartError

FIT_BOOT = 1000  # default resamples of a fit's prompt bootstrap
Z95 = 1.959964
DRAWS = 4000  # draws of the seed-pooling bootstrap


def design(form: str, d: np.ndarray) -> np.ndarray:
    """Columns multiplying (α, β): BoN [d, −d²]; RL [d, −d·log d] with 0·log 0 = 0."""
    if form == "bon":
        return np.stack([d, -d * d], axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dlogd = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    return np.stack([d, -dlogd], axis=-1)


def resample_means(curves: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> np.ndarray:
    """(B, L) mean curves of B prompt resamples of `curves` (P, L), spread about the mean curve by
    Hesterberg's expansion √(P/(P − 1))·t_{P−1}/z (the "expanded percentile" bootstrap, Hesterberg 2015):
    plain percentiles of a mean over P = 16 prompts covered 0.90–0.92 at a nominal 0.95, the expanded
    ones 0.94–0.95 like a t interval (tests/test_statistics.py), while keeping the bootstrap's shape."""
    P = curves.shape[0]
    idx = np.random.default_rng(seed).integers(0, P, size=(n_boot, P))
    centre = curves.mean(axis=0)
    q = 0.5 + level / 2
    expand = np.sqrt(P / (P - 1)) * stats.t.ppf(q, P - 1) / stats.norm.ppf(q) if P > 1 else 1.0
    return centre + (curves[idx].mean(axis=1) - centre) * expand


def check_curves(d: np.ndarray, curves) -> np.ndarray:
    """(P, L) finite per-prompt curves aligned with d (L,), P ≥ 2."""
    g = np.asarray(curves, dtype=np.float64)
    if g.ndim != 2 or g.shape[1] != d.size:
        raise GoodhartError(f"per-prompt curves must be (P, len(d)) = (P, {d.size}), got {g.shape}")
    if g.shape[0] < 2:
        raise GoodhartError("a prompt bootstrap needs at least 2 prompts' curves")
    if not np.isfinite(g).all():
        raise GoodhartError(f"per-prompt curves hold {int((~np.isfinite(g)).sum())} non-finite values")
    return g


def bootstrap_coefs(X: np.ndarray, curves: np.ndarray, n_boot: int, seed: int,
                    level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(θ̂ (2,), θ_b (B, 2)): least squares of the mean curve on X (L, 2), and of each resample's mean.

    Linear in the curve, so θ_b = mean_b · pinv(X)ᵀ for all resamples at once."""
    A = np.linalg.pinv(X)
    return A @ curves.mean(axis=0), resample_means(curves, n_boot, seed, level) @ A.T


def percentile_ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def z_quantile(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def paired_fall(curves, n_boot: int = FIT_BOOT, seed: int = 0, level: float = 0.95, splits: int = 200) -> dict:
    """Gold at the peak minus gold at the last point, with the peak chosen on other prompts (SPEC §11).

    Each estimate splits the prompts in two halves at random: the first half picks the peak (argmax of
    its mean curve), the second half measures curve[peak] − curve[last]; the choice is never scored on
    the prompts that made it, so noise alone does not make a fall. Point: mean over `splits` splits of
    the prompts; interval: percentiles over prompt resamples, each with its own split. curves: (P, L),
    P ≥ 4. Returns {"fall", "fall_lo", "fall_hi"}; "a fall" is claimed when fall_lo > 0.
    """
    g = np.asarray(curves, dtype=np.float64)
    P = g.shape[0]
    if g.ndim != 2 or P < 4:
        raise GoodhartError(f"a paired fall needs (P, L) curves with P >= 4 prompts, got {g.shape}")
    rng = np.random.default_rng(seed)

    def split_fall(rows: np.ndarray) -> float:
        order = rng.permutation(rows)
        choose, score = order[: P // 2], order[P // 2 :]
        peak = int(np.argmax(g[choose].mean(axis=0)))
        m = g[score].mean(axis=0)
        return float(m[peak] - m[-1])

    point = float(np.mean([split_fall(np.arange(P)) for _ in range(splits)]))
    boot = np.array([split_fall(rng.integers(0, P, size=P)) for _ in range(n_boot)])
    lo, hi = percentile_ci(boot, level)
    return {"fall": point, "fall_lo": lo, "fall_hi": hi}


def heldout_check(form: str, d, curves, small, n_boot: int = FIT_BOOT, seed: int = 0, level: float = 0.95) -> dict:
    """Does a form fitted on the small points predict the others? (SPEC §11 "held-out prediction")

    Fit on the points where `small` is True (e.g. n ≤ N/8); for each held-out point, the paired
    bootstrap interval of (predicted − measured) mean gold over the same prompt resamples; the point is
    covered when that interval holds 0. Returns {"heldout_points", "heldout_coverage" (fraction covered),
    "heldout_mae" (mean |predicted − measured|)}; d (L,), curves (P, L), small (L,) bool.
    """
    d = np.asarray(d, dtype=np.float64)
    small = np.asarray(small, dtype=bool)
    g = check_curves(d, curves)
    X = design(form, d)
    if np.linalg.matrix_rank(X[small]) < 2 or (~small).sum() < 1:
        raise GoodhartError("a held-out check needs 2 distinct d > 0 among the fitted points and one held out")
    theta, thetas = bootstrap_coefs(X[small], g[:, small], n_boot, seed, level)
    means = resample_means(g, n_boot, seed, level)  # the same resamples (same seed) as the fit's
    diff = thetas @ X[~small].T - means[:, ~small]
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(diff, [tail, 100 - tail], axis=0)
    pred = X[~small] @ theta
    return {"heldout_points": int((~small).sum()), "heldout_coverage": float(np.mean((lo <= 0) & (0 <= hi))),
            "heldout_mae": float(np.mean(np.abs(pred - g[:, ~small].mean(axis=0))))}


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar test of two classifiers on the same pairs (SPEC §11): b = pairs only A gets right,
    c = pairs only B gets right; p = 2·P[Binom(b + c, ½) ≤ min(b, c)], capped at 1 (1 when b = c = 0).
    SPEC example: b = 9, c = 2 → 2·(1 + 11 + 55)/2048 = 0.0654."""
    if b < 0 or c < 0 or int(b) != b or int(c) != c:
        raise GoodhartError(f"McNemar needs non-negative integer discordant counts, got b={b}, c={c}")
    n = int(b + c)
    return 1.0 if n == 0 else float(min(1.0, 2 * stats.binom.cdf(min(b, c), n, 0.5)))


def interval_sd(lo, hi) -> float:
    """The sd of a normal whose central 95% interval is [lo, hi] (0 for a missing or infinite bound)."""
    return max((hi - lo) / (2 * Z95), 0.0) if lo is not None and hi is not None and np.isfinite([lo, hi]).all() else 0.0


def pooled(values, lows, highs, seed: int = 0) -> tuple[float, float, float]:
    """Pool one estimate over seeds (SPEC §11 "Seeds"): (mean over seeds, 95% lo, hi). Each draw resamples
    the seeds with replacement and draws each picked seed's estimate from a normal matched to that seed's
    own (prompt-bootstrap) interval, so the interval carries seed-to-seed and prompt-to-prompt variation."""
    v, sd = np.asarray(values, float), np.array([interval_sd(lo, hi) for lo, hi in zip(lows, highs, strict=True)])
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(v), size=(DRAWS, len(v)))
    draws = (v[pick] + sd[pick] * rng.standard_normal(pick.shape)).mean(axis=1)
    return float(v.mean()), float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def paired_difference(a, b, stat: str = "last", n_boot: int = FIT_BOOT, seed: int = 0, level: float = 0.95) -> dict:
    """stat(mean curve of a) − stat(mean curve of b) for two methods measured on the same P prompts
    (SPEC §11 "Paired differences"): both curves are resampled with the same prompts (resample_means with
    one seed), so the interval carries only what differs between them. stat: "last" (the value at the
    last point, e.g. gold at the largest n) or "max" (the peak of each mean curve, chosen inside every
    resample, so the selection is paid for). a, b: (P, L). Returns {"diff", "diff_lo", "diff_hi"}."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] < 2:
        raise GoodhartError(f"a paired difference needs two (P, L) curves of one shape, P >= 2; got {a.shape}, {b.shape}")
    if stat not in ("last", "max"):
        raise GoodhartError(f"unknown statistic {stat!r} (last or max)")
    f = (lambda m: m[..., -1]) if stat == "last" else (lambda m: m.max(axis=-1))
    diff = f(resample_means(a, n_boot, seed, level)) - f(resample_means(b, n_boot, seed, level))
    lo, hi = percentile_ci(diff, level)
    return {"diff": float(f(a.mean(axis=0)) - f(b.mean(axis=0))), "diff_lo": lo, "diff_hi": hi}
