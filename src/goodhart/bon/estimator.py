"""Unbiased Best-of-n estimates for every n ≤ N from one pool of N samples, and the BoN KL bound.

Shapes (glossary used across goodhart): B prompts, K (= N here) samples per prompt, and any
number of leading batch dimensions written `...`.
"""

import numpy as np
from scipy.special import gammaln

from goodhart.bon.prompt_stats import resample_means
from goodhart.errors import GoodhartError

# Weight matrices are (chunk, N) float64; keep each chunk under ~64 MB so N = 1e5 with every n
# fits in memory.
_CHUNK_ELEMENTS = 8_000_000


def kl_bound(n):
    """KL(π_BoN ‖ π_ref) upper bound for Best-of-n: log n − (n − 1)/n.

    SPEC §2 (Gao et al. 2023, §2; Stiennon et al.). Exact for continuous, tie-free rewards.
    n: scalar or array of integers ≥ 1. Returns float or float64 array of the same shape.
    """
    arr = np.asarray(n, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 1):
        raise GoodhartError(f"kl_bound needs n >= 1, got {n!r}")
    out = np.log(arr) - (arr - 1.0) / arr
    return float(out) if out.ndim == 0 else out


def bon_weights(N: int, ns) -> np.ndarray:
    """Weight of the i-th smallest of N samples in the mean over size-n subsets of the subset max.

    w[n, i] = C(i − 1, n − 1) / C(N, n) for i = n … N (1-based), else 0; each row sums to 1.
    SPEC §3. Computed in log space with gammaln so N up to 1e5 is stable.
    N: pool size; ns: 1-D integers in [1, N]. Returns (len(ns), N) float64.
    """
    ns = np.asarray(ns, dtype=np.int64)
    i = np.arange(1, N + 1, dtype=np.float64)[None, :]
    n = ns.astype(np.float64)[:, None]
    valid = i >= n
    log_c_i = gammaln(i) - gammaln(n) - gammaln(np.maximum(i - n + 1, 1.0))
    log_c_N = gammaln(N + 1.0) - gammaln(n + 1) - gammaln(N - n + 1)
    return np.where(valid, np.exp(np.where(valid, log_c_i - log_c_N, -np.inf)), 0.0)


def _tie_averaged(sorted_select: np.ndarray, sorted_eval: np.ndarray) -> np.ndarray:
    """Replace eval values inside each run of equal select scores by the run's mean (SPEC §3 ties).

    Inputs (R, N), rows sorted by select. Exact for uniformly random tie-breaking.
    """
    R, N = sorted_select.shape
    new_group = np.ones((R, N), dtype=bool)
    new_group[:, 1:] = sorted_select[:, 1:] != sorted_select[:, :-1]
    gid = np.cumsum(new_group.ravel()) - 1  # new_group[:, 0] is True, so groups never span rows
    sums = np.bincount(gid, weights=sorted_eval.ravel())
    counts = np.bincount(gid)
    return (sums / counts)[gid].reshape(R, N)


def bon_estimate(select_scores, eval_scores, ns) -> np.ndarray:
    """Expected eval score of the select-argmax of n samples, for each n, from one pool of N.

    R̂_n = Σ_{i=n}^{N} [C(i−1, n−1) / C(N, n)] · e_(i), e sorted by select score ascending;
    the exact mean over all size-n subsets (SPEC §3; Gao et al. 2023 App. I; Nakano et al.).
    Ties in select: eval values are averaged within each tie group (random tie-breaking).
    select_scores, eval_scores: (..., N) with the same shape; ns: 1-D ints in [1, N].
    Returns (..., len(ns)) float64. Pass select as eval to get the proxy's own curve.
    """
    s = np.asarray(select_scores, dtype=np.float64)
    e = np.asarray(eval_scores, dtype=np.float64)
    if s.shape != e.shape or s.ndim == 0 or s.shape[-1] == 0:
        raise GoodhartError(
            f"bon_estimate needs select and eval scores of the same shape (..., N) with N >= 1; "
            f"got {s.shape} and {e.shape}"
        )
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(e))):
        raise GoodhartError("bon_estimate got NaN or inf scores; drop or fix those samples first")
    ns = np.atleast_1d(np.asarray(ns))
    N = s.shape[-1]
    if ns.ndim != 1 or not np.issubdtype(ns.dtype, np.integer) or np.any(ns < 1) or np.any(ns > N):
        raise GoodhartError(f"bon_estimate needs integer n in [1, {N}] (the pool size), got {ns.tolist()}")
    lead = s.shape[:-1]
    s2, e2 = s.reshape(-1, N), e.reshape(-1, N)
    order = np.argsort(s2, axis=-1, kind="stable")
    sorted_s = np.take_along_axis(s2, order, axis=-1)
    sorted_e = _tie_averaged(sorted_s, np.take_along_axis(e2, order, axis=-1))
    if len(ns) * 16 < ns.max():  # few n: weights straight from log-gamma
        out = np.empty((s2.shape[0], len(ns)))
        step = max(1, _CHUNK_ELEMENTS // N)
        for start in range(0, len(ns), step):
            w = bon_weights(N, ns[start : start + step])
            out[:, start : start + step] = sorted_e @ w.T
    else:
        out = _estimate_by_recurrence(sorted_e, ns)
    return out.reshape(*lead, len(ns))


def _estimate_by_recurrence(sorted_e: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """R̂_n for the n in ns by stepping the weights from n to n + 1 (O(N) each, no log-gamma):

    w(i, 1) = 1/N;  w(i, n+1) = w(i, n) · (i − n)(n + 1) / (n (N − n)).
    Entries that fall below 1e-280 only shrink further, so they are dropped from the active window
    (this also keeps the arithmetic out of slow denormals). sorted_e: (R, N). Returns (R, len(ns)).
    """
    R, N = sorted_e.shape
    wanted: dict[int, list[int]] = {}
    for j, n in enumerate(ns.tolist()):
        wanted.setdefault(n, []).append(j)
    out = np.empty((R, len(ns)))
    i = np.arange(1, N + 1, dtype=np.float64)
    w = np.full(N, 1.0 / N)
    lo = 0
    for n in range(1, int(ns.max()) + 1):
        if n in wanted:
            out[:, wanted[n]] = (sorted_e[:, lo:] @ w[lo:])[:, None]
        if n < N:
            w[lo:] *= (i[lo:] - n) * ((n + 1) / (n * (N - n)))
            while lo < N and w[lo] < 1e-280:
                lo += 1
    return out


def default_ns(N: int, max_points: int = 64) -> np.ndarray:
    """n values to report for a pool of N: every n if N ≤ max_points·2, else log-spaced incl. 1 and N."""
    if N <= 2 * max_points:
        return np.arange(1, N + 1)
    return np.unique(np.round(np.geomspace(1, N, max_points)).astype(np.int64))


def bon_bootstrap(select_scores, eval_scores, ns, n_boot: int, seed: int = 0, level: float = 0.95) -> tuple:
    """Percentile bootstrap interval of the prompt-mean BoN estimate, for each n (SPEC §11).

    Resamples prompts with replacement (the unit of replication) and averages their per-prompt
    unbiased estimates (SPEC §3); each prompt's estimate already carries its pool's sampling noise.
    Samples within a pool are not resampled: a resampled pool of N holds ≈ 0.632·N distinct samples,
    which biased the interval's centre low at n near N (−0.065 at n = N = 64 in the SPEC §11 design) and
    widened it (coverage 0.97–0.995 at a nominal 0.95); prompt resampling, expanded for few prompts
    (resample_means), covers ≥ 0.90 at every n there (tests/test_statistics.py). select_scores, eval_scores: (B, N). Returns (lo, hi), each (len(ns),).
    """
    s = np.asarray(select_scores, dtype=np.float64)
    e = np.asarray(eval_scores, dtype=np.float64)
    if s.ndim != 2 or s.shape != e.shape:
        raise GoodhartError(f"bon_bootstrap needs (B, N) select and eval scores, got {s.shape} and {e.shape}")
    return prompt_interval(bon_estimate(s, e, ns), n_boot, seed, level)


def prompt_interval(per_prompt, n_boot: int, seed: int = 0, level: float = 0.95) -> tuple:
    """Percentile interval of the mean over prompts of `per_prompt` (B, L), resampling its B rows."""
    est = resample_means(np.asarray(per_prompt, dtype=np.float64), n_boot, seed, level)
    tail = 100 * (1 - level) / 2
    return np.percentile(est, tail, axis=0), np.percentile(est, 100 - tail, axis=0)
