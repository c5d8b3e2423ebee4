"""Soft Best-of-n: pick candidate i of n with probability softmax(r_i / λ) instead of the argmax.

λ → 0 is Best-of-n, λ → ∞ the reference policy. As n → ∞ the selected sample follows the tilted
distribution π_λ(y) = π_ref(y)·exp(r(y)/λ) / Z, whose KL to π_ref is closed-form:
    KL(π_λ ‖ π_ref) = E_λ[r]/λ − log Z,   Z = E_ref[exp(r/λ)].
Shapes: B prompts, N pool samples per prompt, n candidates, L values of λ.
"""

import numpy as np
from scipy.special import logsumexp, softmax

from goodhart.errors import GoodhartError


def _check_lams(lams) -> np.ndarray:
    lams = np.atleast_1d(np.asarray(lams, dtype=np.float64))
    if lams.ndim != 1 or np.any(np.isnan(lams)) or np.any(lams < 0):
        raise GoodhartError(f"λ must be >= 0 (0: hard Best-of-n, inf: no selection), got {lams}")
    return lams


def selection_weights(rewards, lam: float) -> np.ndarray:
    """Probability of picking each candidate: softmax(r/λ) over the last axis.

    λ = 0: uniform over the tied maxima (hard Best-of-n); λ = inf: uniform. rewards (..., n).
    """
    r = np.asarray(rewards, dtype=np.float64)
    if lam == 0:
        top = r == r.max(axis=-1, keepdims=True)
        return top / top.sum(axis=-1, keepdims=True)
    if np.isinf(lam):
        return np.full(r.shape, 1.0 / r.shape[-1])
    return softmax(r / lam, axis=-1)


def soft_bon_select(rewards, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Sampler: index of the chosen candidate for each row of rewards (..., n) → (...) int."""
    w = selection_weights(rewards, lam)
    u = rng.random(w.shape[:-1] + (1,))
    return np.minimum((np.cumsum(w, axis=-1) < u).sum(axis=-1), w.shape[-1] - 1)


def soft_bon_estimate(select, evals, ns, lams, subsets: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Expected eval score of soft Best-of-n for every (n, λ) from one pool, and its Monte-Carlo SE.

    No closed form exists for 1 < n < N and 0 < λ < ∞, so each prompt's expectation over size-n
    subsets is estimated from `subsets` random subsets (the same subsets for every λ: common random
    numbers); within a subset the selection is averaged exactly (Σ softmax(r/λ)·g). n = 1 and n = N
    are exact (SE 0). The result is the mean over prompts.
    select, evals: (B, N); ns: (S,) in [1, N]; lams: (L,) ≥ 0. Returns (mean, se), each (S, L).
    """
    select, evals = np.asarray(select, dtype=np.float64), np.asarray(evals, dtype=np.float64)
    if select.ndim != 2 or select.shape != evals.shape:
        raise GoodhartError(f"soft_bon_estimate needs select and evals of the same shape (B, N), got "
                            f"{select.shape} and {evals.shape}")
    B, N = select.shape
    ns, lams = np.atleast_1d(np.asarray(ns, dtype=np.int64)), _check_lams(lams)
    if ns.min() < 1 or ns.max() > N:
        raise GoodhartError(f"n must lie in [1, N = {N}], got {ns.min()}..{ns.max()}")
    rng = np.random.default_rng(seed)
    mean, se = np.zeros((len(ns), len(lams))), np.zeros((len(ns), len(lams)))
    for a, n in enumerate(ns):
        if n in (1, N):  # every subset is the same (n = N) or the estimate is the pool mean (n = 1)
            idx = np.arange(N)[None, None, :] if n == N else np.arange(N)[None, :, None]
        else:
            idx = np.argpartition(rng.random((B, subsets, N)), n - 1, axis=-1)[..., :n]
        b = np.arange(B)[:, None, None]
        s = select[b, idx] if n != 1 else select[:, :, None]
        g = evals[b, idx] if n != 1 else evals[:, :, None]
        for c, lam in enumerate(lams):
            per_subset = (selection_weights(s, lam) * g).sum(axis=-1)  # (B, R)
            mean[a, c] = per_subset.mean()
            if n not in (1, N):
                se[a, c] = np.sqrt((per_subset.var(axis=1, ddof=1) / per_subset.shape[1]).sum()) / B
    return mean, se


def tilted_kl(ref_probs, rewards, lam):
    """KL(π_λ ‖ π_ref) of the tilted distribution π_ref·exp(r/λ)/Z on a finite outcome set.

    = Σ π_λ r / λ − log Σ π_ref exp(r/λ). λ = 0: the reference restricted to the maximum
    (KL = −log π_ref(argmax set)); λ = inf: 0. ref_probs, rewards: (..., K). Returns (...) or scalar.
    """
    p, r = np.asarray(ref_probs, dtype=np.float64), np.asarray(rewards, dtype=np.float64)
    if p.shape != r.shape or np.any(p < 0):
        raise GoodhartError("tilted_kl needs non-negative ref_probs with the shape of rewards")
    p = p / p.sum(axis=-1, keepdims=True)
    lam = float(_check_lams(lam)[0])
    if np.isinf(lam):
        out = np.zeros(p.shape[:-1])
    elif lam == 0:
        top = (r == r.max(axis=-1, keepdims=True)) & (p > 0)
        out = -np.log((p * top).sum(axis=-1))
    else:
        with np.errstate(divide="ignore"):
            log_z = logsumexp(r / lam, b=p, axis=-1)
            logits = np.log(p) + r / lam
        w = softmax(logits, axis=-1)
        out = (w * r).sum(axis=-1) / lam - log_z
    return float(out) if np.ndim(out) == 0 else out


def tilted_reward(ref_probs, rewards, evals, lam):
    """E_{π_λ}[evals]: the expected eval score under the tilted distribution (soft BoN as n → ∞)."""
    p = np.asarray(ref_probs, dtype=np.float64)
    r, e = np.asarray(rewards, dtype=np.float64), np.asarray(evals, dtype=np.float64)
    lam = float(_check_lams(lam)[0])
    if lam == 0 or np.isinf(lam):
        w = p * selection_weights(np.where(p > 0, r, -np.inf), lam) if lam == 0 else p
    else:
        with np.errstate(divide="ignore"):
            w = softmax(np.log(p) + r / lam, axis=-1)
    w = w / w.sum(axis=-1, keepdims=True)
    return (w * e).sum(axis=-1)
