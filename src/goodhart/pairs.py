"""Within-prompt pair enumeration: pure numpy, so `import goodhart` (which exports make_pairs) stays
free of torch."""

import numpy as np


def within_prompt_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pair i < j of samples of one prompt, for labels of shape (B, K): arrays (prompt, i, j,
    labels[prompt, i] − labels[prompt, j]), prompt-major. The enumeration behind the proxies' comparisons
    (reward.make_pairs) and the gao gold's training pairs (worlds.gao.all_pairs)."""
    B, K = labels.shape
    ia, ib = np.triu_indices(K, k=1)
    b = np.repeat(np.arange(B), len(ia))
    a, c = np.tile(ia, B), np.tile(ib, B)
    return b, a, c, labels[b, a] - labels[b, c]
