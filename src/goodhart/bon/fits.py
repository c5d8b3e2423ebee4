"""Gao et al. scaling-law fits of gold reward against d = sqrt(KL) (SPEC §10), their peaks, trends
across RM sizes, and the better-than-chance test of a proxy's validation accuracy.

Pure functions over numpy arrays (no model code).
    BoN: R(d) = d·(α − β·d)          peak d* = α / (2β),        R(d*) = α² / (4β)
    RL:  R(d) = d·(α − β·log d)      peak d* = exp(α/β − 1),    R(d*) = β·d*
Both are linear in (α, β), so they are fitted by ordinary least squares without intercept; the
intervals are the usual t intervals from the OLS covariance, and the peak's interval is
propagated from the (α, β) covariance by the delta method.
"""

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import stats

from goodhart.bon.prompt_stats import (
    FIT_BOOT,
    bootstrap_coefs,
    check_curves,
    design,
    percentile_ci,
    z_quantile,
)
from goodhart.errors import GoodhartError

Form = Literal["bon", "rl"]


@dataclass(frozen=True)
class GaoFit:
    """A fitted R(d); `peak_d`/`peak_reward` are None when β ≤ 0 (no peak: gold still rising)."""

    form: Form
    alpha: float
    beta: float
    alpha_ci: tuple[float, float]
    beta_ci: tuple[float, float]
    r2: float
    points: int
    peak_d: float | None
    peak_reward: float | None
    peak_d_ci: tuple[float, float] | None
    cov: tuple[tuple[float, float], tuple[float, float]]
    t: float  # the quantile behind predict_interval (t for OLS, normal for the bootstrap)
    interval: str = "ols"  # "prompt bootstrap (B=…)" for per-prompt curves; "ols": no interval to trust

    def predict(self, d) -> np.ndarray:
        """R(d) under this fit; d ≥ 0 (R(0) = 0)."""
        return gao_predict(self.form, d, self.alpha, self.beta)

    def predict_interval(self, d) -> tuple[np.ndarray, np.ndarray]:
        """Confidence interval of the fitted mean R(d) (same level as the fit): x·θ ± t·sqrt(x Σ xᵀ)."""
        X = design(self.form, np.asarray(d, dtype=np.float64))
        half = self.t * np.sqrt(np.maximum(np.einsum("...i,ij,...j->...", X, np.array(self.cov), X), 0.0))
        mid = X @ np.array([self.alpha, self.beta])
        return mid - half, mid + half

    @property
    def peak_kl(self) -> float | None:
        return None if self.peak_d is None else self.peak_d ** 2

    def as_row(self) -> dict:
        row = asdict(self)
        row.pop("cov")
        row.pop("t")
        return row


def gao_predict(form: Form, d, alpha: float, beta: float) -> np.ndarray:
    """R(d) = d(α − βd) (bon) or d(α − β log d) (rl) at d ≥ 0, R(0) = 0 (SPEC §10). d: any shape."""
    return design(form, np.asarray(d, dtype=np.float64)) @ np.array([alpha, beta])


def _peak(form: Form, a: float, b: float) -> tuple[float, float, np.ndarray] | None:
    """(d*, R(d*), ∂d*/∂(α, β)) or None when the curve has no interior maximum."""
    if not b > 0:
        return None
    if form == "bon":
        d = a / (2 * b)
        return (d, a * a / (4 * b), np.array([1 / (2 * b), -a / (2 * b * b)])) if d > 0 else None
    if a / b - 1 > np.log(np.finfo(np.float64).max):  # d* = e^(α/β − 1) beyond float range: no peak to report
        return None
    d = float(np.exp(a / b - 1))
    return d, b * d, np.array([d / b, -d * a / (b * b)])


def fit_gao(form: Form, d, gold, level: float = 0.95, n_boot: int = FIT_BOOT, seed: int = 0) -> GaoFit:
    """Least-squares fit of SPEC §10's form (no intercept: gold is normalised to 0 at d = 0).

    d: (L,) finite, ≥ 0, at least 3 points of which 2 with d > 0. gold: per-prompt curves (P, L), P ≥ 2
    — α, β are those of the mean curve and their intervals (and the peak's) come from `n_boot` seeded
    resamples of the prompts (SPEC §11) — or one curve (L,): OLS t intervals from its residuals, which
    treat the points of one correlated curve as independent: no interval you can trust (they covered
    the true α, β 25–27% of the time on per-prompt synthetic curves, tests/test_statistics.py).
    """
    if np.ndim(gold) == 2:
        return _fit_prompts(form, np.asarray(d, dtype=np.float64).ravel(), gold, level, n_boot, seed)
    d, g = np.asarray(d, dtype=np.float64).ravel(), np.asarray(gold, dtype=np.float64).ravel()
    if d.shape != g.shape:
        raise GoodhartError(f"fit needs d and gold of the same length, got {d.size} and {g.size}")
    if d.size < 3:
        raise GoodhartError(f"a {form} fit needs at least 3 points, got {d.size}")
    if not (np.isfinite(d).all() and np.isfinite(g).all()):
        raise GoodhartError(f"a {form} fit needs finite d and gold; got {int((~np.isfinite(d)).sum())} non-finite "
                            f"d and {int((~np.isfinite(g)).sum())} non-finite gold values")
    if (d < 0).any():
        raise GoodhartError("d = sqrt(KL) must be >= 0")
    X = design(form, d)
    if np.linalg.matrix_rank(X) < 2:
        raise GoodhartError(f"a {form} fit needs at least 2 distinct d > 0")
    coef, *_ = np.linalg.lstsq(X, g, rcond=None)
    resid = g - X @ coef
    dof = d.size - 2
    sigma2 = float(resid @ resid) / dof if dof > 0 else 0.0
    cov = sigma2 * np.linalg.inv(X.T @ X)
    t = float(stats.t.ppf(0.5 + level / 2, dof)) if dof > 0 else float("inf")
    se = np.sqrt(np.diag(cov))
    ss_tot = float(((g - g.mean()) ** 2).sum())
    r2 = 1 - float(resid @ resid) / ss_tot if ss_tot > 0 else float("nan")
    a, b = float(coef[0]), float(coef[1])
    peak = _peak(form, a, b)
    peak_d = peak_reward = peak_ci = None
    if peak is not None:
        peak_d, peak_reward, grad = peak
        half = t * float(np.sqrt(max(grad @ cov @ grad, 0.0)))
        peak_ci = (max(peak_d - half, 0.0), peak_d + half)
    return GaoFit(form, a, b, (a - t * se[0], a + t * se[0]), (b - t * se[1], b + t * se[1]), r2, int(d.size),
                  peak_d, peak_reward, peak_ci, tuple(map(tuple, cov.tolist())), t)


def _fit_prompts(form: Form, d: np.ndarray, curves, level: float, n_boot: int, seed: int) -> GaoFit:
    """fit_gao on per-prompt curves (P, L): the mean curve's fit, prompt-bootstrap percentile intervals."""
    g = check_curves(d, curves)
    mean_fit = fit_gao(form, d, g.mean(axis=0), level)  # point estimates, R², checks of d
    if n_boot < 100:
        raise GoodhartError(f"a prompt-bootstrap fit needs n_boot >= 100, got {n_boot}")
    _, thetas = bootstrap_coefs(design(form, d), g, n_boot, seed, level)
    peaks = np.array([p[0] if (p := _peak(form, a, b)) is not None else np.inf for a, b in thetas])
    peak_ci = None
    if mean_fit.peak_d is not None:
        lo, hi = percentile_ci(np.minimum(peaks, 1e300), level)  # resamples without a peak count as d* = ∞
        peak_ci = (lo, hi if hi < 1e299 else float("inf"))
    return GaoFit(form, mean_fit.alpha, mean_fit.beta, percentile_ci(thetas[:, 0], level),
                  percentile_ci(thetas[:, 1], level), mean_fit.r2, mean_fit.points, mean_fit.peak_d,
                  mean_fit.peak_reward, peak_ci, tuple(map(tuple, np.cov(thetas.T).tolist())), z_quantile(level),
                  f"prompt bootstrap (P={g.shape[0]}, B={n_boot})")


def fit_bon(d, gold, level: float = 0.95, n_boot: int = FIT_BOOT, seed: int = 0) -> GaoFit:
    """R_bon(d) = d(α − βd) by least squares (SPEC §10; Gao et al. 2023 eq. 1). See fit_gao for gold."""
    return fit_gao("bon", d, gold, level, n_boot, seed)


def fit_rl(d, gold, level: float = 0.95, n_boot: int = FIT_BOOT, seed: int = 0) -> GaoFit:
    """R_rl(d) = d(α − β log d) by least squares (SPEC §10; Gao et al. 2023 eq. 2). See fit_gao for gold."""
    return fit_gao("rl", d, gold, level, n_boot, seed)


@dataclass(frozen=True)
class LogTrend:
    """y = a + b·log10(x) with intervals; `predict` extrapolates to other x (e.g. a larger RM)."""

    intercept: float
    slope: float
    slope_ci: tuple[float, float]
    r2: float
    points: int

    def predict(self, x) -> np.ndarray:
        return self.intercept + self.slope * np.log10(np.asarray(x, dtype=np.float64))


def log_trend(x, y, level: float = 0.95) -> LogTrend:
    """Least squares of y on log10(x) (Gao: α, β roughly log-linear in RM parameters). x > 0, ≥ 3 points."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.size < 3 or x.shape != y.shape or not (np.isfinite(x).all() and np.isfinite(y).all()) or (x <= 0).any():
        raise GoodhartError("a trend needs at least 3 finite (x > 0, y) points")
    if np.unique(x).size < 2:
        raise GoodhartError("a trend needs at least 2 distinct x values")
    res = stats.linregress(np.log10(x), y)
    t = float(stats.t.ppf(0.5 + level / 2, x.size - 2))
    return LogTrend(float(res.intercept), float(res.slope),
                    (float(res.slope - t * res.stderr), float(res.slope + t * res.stderr)), float(res.rvalue ** 2),
                    int(x.size))


def chance_test(correct: int, total: int) -> float:
    """One-sided binomial p-value of `correct` of `total` validation pairs under chance (p = 0.5)."""
    if total < 1 or not 0 <= correct <= total:
        raise GoodhartError(f"chance test needs 0 <= correct <= total and total >= 1, got {correct}/{total}")
    return float(stats.binomtest(int(correct), int(total), 0.5, alternative="greater").pvalue)


def chance_threshold(data_sizes, correct, total, alpha: float = 0.05) -> int | None:
    """Smallest data size from which on every larger size the proxy beats chance at level alpha
    (None if even the largest does not). Arguments are aligned (S,) sequences."""
    order = np.argsort(np.asarray(data_sizes))
    sizes = np.asarray(data_sizes)[order]
    ok = np.array([chance_test(int(c), int(t)) < alpha for c, t in zip(np.asarray(correct)[order],
                                                                        np.asarray(total)[order], strict=True)])
    if not ok.size or not ok[-1]:
        return None
    first = len(ok) - int(np.argmin(ok[::-1])) if not ok.all() else 0
    return int(sizes[first])
