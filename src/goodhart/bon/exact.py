"""Exact Best-of-n distribution and its KL on a finite outcome set (SPEC §4; BOND Theorem 1)."""

import numpy as np

from goodhart.errors import GoodhartError


def _check(ref_probs, rewards, n):
    p = np.asarray(ref_probs, dtype=np.float64)
    r = np.asarray(rewards, dtype=np.float64)
    if p.shape != r.shape or p.ndim == 0 or p.shape[-1] == 0:
        raise GoodhartError(f"need ref_probs and rewards of the same shape (..., K), got {p.shape} and {r.shape}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=-1), 1.0, atol=1e-6) or not np.all(np.isfinite(r)):
        raise GoodhartError("ref_probs must be non-negative and sum to 1 over the last axis; rewards must be finite")
    if int(n) != n or n < 1:
        raise GoodhartError(f"n must be an integer >= 1, got {n}")
    return p, r


def cdf_le_lt(ref_probs, rewards) -> tuple[np.ndarray, np.ndarray]:
    """p≤(y) = P_{y'∼π_ref}[r(y') ≤ r(y)] and p<(y) = P[r(y') < r(y)], each (..., K).

    SPEC §4. Sort-based, O(K log K) per row, ties grouped exactly.
    """
    p, r = np.asarray(ref_probs, dtype=np.float64), np.asarray(rewards, dtype=np.float64)
    K = p.shape[-1]
    p2, r2 = p.reshape(-1, K), r.reshape(-1, K)
    order = np.argsort(r2, axis=-1, kind="stable")
    rs, ps = np.take_along_axis(r2, order, -1), np.take_along_axis(p2, order, -1)
    new = np.ones_like(rs, dtype=bool)
    new[:, 1:] = rs[:, 1:] != rs[:, :-1]
    gid = np.cumsum(new.ravel()) - 1  # groups never span rows (new[:, 0] is True)
    group_mass = np.bincount(gid, weights=ps.ravel())
    cum = np.cumsum(ps, axis=-1).ravel()
    group_le = np.zeros(gid[-1] + 1)
    np.maximum.at(group_le, gid, cum)  # cum at the group's last member = P[r' ≤ r]
    le_sorted = group_le[gid].reshape(rs.shape)
    lt_sorted = le_sorted - group_mass[gid].reshape(rs.shape)
    le, lt = np.empty_like(le_sorted), np.empty_like(lt_sorted)
    np.put_along_axis(le, order, le_sorted, -1)
    np.put_along_axis(lt, order, np.maximum(lt_sorted, 0.0), -1)
    return le.reshape(p.shape), lt.reshape(p.shape)


def bon_distribution(ref_probs, rewards, n: int) -> np.ndarray:
    """π_BoN(y) = π_ref(y) · Σ_{i=1}^{n} p<(y)^{i−1} · p≤(y)^{n−i}: the law of Best-of-n with ties broken
    uniformly at random (the i-th draw is y, earlier draws strictly worse, later ones no better).

    SPEC §4 (Sessa et al. 2024, BOND Theorem 1). The geometric sum equals π_ref(y)·(p≤ⁿ − p<ⁿ)/π_ref(G),
    G the tie group of y, so it is computed in closed form. Without ties: p≤ⁿ − p<ⁿ.
    ref_probs, rewards: (..., K); n: integer ≥ 1. Returns (..., K), summing to 1.
    """
    p, r = _check(ref_probs, rewards, n)
    le, lt = cdf_le_lt(p, r)
    group = le - lt
    safe = np.where(group > 0, group, 1.0)
    return np.where(group > 0, p * (le**n - lt**n) / safe, 0.0)


def bon_kl(ref_probs, rewards, n: int) -> np.ndarray:
    """Exact KL(π_BoN ‖ π_ref) = Σ_y π_BoN(y) log(π_BoN(y)/π_ref(y)); ≤ log n − (n−1)/n (SPEC §2, §4).

    ref_probs, rewards: (..., K); returns (...) float64.
    """
    p, _ = _check(ref_probs, rewards, n)
    q = bon_distribution(ref_probs, rewards, n)
    mask = q > 0
    return np.where(mask, q * (np.log(np.where(mask, q, 1.0)) - np.log(np.where(mask, p, 1.0))), 0.0).sum(axis=-1)
