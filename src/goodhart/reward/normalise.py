"""Reward normalisation against the initial policy (SPEC §5, Gao et al. 2023 §2.3)."""

import numpy as np


def normalisation(ref_scores, scale: bool = True) -> tuple[float, float]:
    """(shift, scale) so that (x − shift) / scale has mean 0 (and unit std if `scale`) on ref_scores.

    ref_scores: any shape, scores of initial-policy samples. A constant reward gets scale 1.
    """
    ref = np.asarray(ref_scores, dtype=np.float64)
    sd = float(ref.std()) if scale else 1.0
    return float(ref.mean()), (sd if sd > 0 else 1.0)


def standardise(scores, ref_scores=None) -> tuple[np.ndarray, float, float]:
    """(z, shift, scale): scores standardised on ref_scores (default: on themselves), SPEC §5.

    z = (scores − shift) / scale with (shift, scale) = normalisation(ref_scores). Any shape.
    """
    shift, scale = normalisation(scores if ref_scores is None else ref_scores)
    return (np.asarray(scores, dtype=np.float64) - shift) / scale, shift, scale
