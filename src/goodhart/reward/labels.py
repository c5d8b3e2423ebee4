"""Synthetic comparisons labelled by the gold reward, with optional label noise (SPEC §5)."""

import numpy as np
from scipy.special import expit

from goodhart.pairs import within_prompt_pairs


def make_pairs(gold, rng: np.random.Generator, max_pairs: int, mode: str = "deterministic",
               temperature: float = 0.1, noise: float = 0.0) -> np.ndarray:
    """Comparisons between samples of the same prompt, labelled by gold.

    SPEC §5 (Gao et al. 2023 §2.2: the gold RM labels which of two policy samples is preferred).
    deterministic: higher gold wins, exact ties dropped. sampled: a wins with prob σ((g_a − g_b)/τ).
    noise ρ: exactly round(ρ·P) labels are flipped and recorded (WARM §4, Coste et al.).
    gold: (B, K) gold scores. Returns int64 (P, 4): [prompt, chosen, rejected, flipped], at most
    max_pairs rows, sampled uniformly without replacement from all eligible within-prompt pairs.
    """
    gold = np.asarray(gold, dtype=np.float64)
    if gold.ndim != 2:
        raise ValueError(f"make_pairs needs gold of shape (B, K), got {gold.shape}")
    b, a, c, diff = within_prompt_pairs(gold)
    if mode == "deterministic":
        keep = diff != 0
        b, a, c, diff = b[keep], a[keep], c[keep], diff[keep]
        a_wins = diff > 0
    elif mode == "sampled":
        a_wins = rng.random(len(diff)) < expit(diff / temperature)
    else:
        raise ValueError(f"unknown label mode {mode!r}")
    chosen, rejected = np.where(a_wins, a, c), np.where(a_wins, c, a)
    pick = rng.permutation(len(b))[:max_pairs]
    pairs = np.stack([b[pick], chosen[pick], rejected[pick], np.zeros(len(pick), dtype=np.int64)], axis=1)
    n_flip = int(round(noise * len(pairs)))
    if n_flip:
        flip = rng.choice(len(pairs), size=n_flip, replace=False)
        pairs[flip, 1], pairs[flip, 2] = pairs[flip, 2].copy(), pairs[flip, 1].copy()
        pairs[flip, 3] = 1
    return pairs.astype(np.int64)
