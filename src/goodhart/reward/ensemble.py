"""Prediction ensembles of reward models: ENS mean, worst-case (WCO), uncertainty-weighted (UWO).

SPEC §6; Coste et al. 2024 (ICLR), §3 eqs. 1–3.
"""

import numpy as np

from goodhart.errors import GoodhartError

METHODS = ("mean", "wco", "uwo")


def aggregate(scores, method: str = "mean", lam: float = 1.0) -> np.ndarray:
    """Combine M members' scores of the same inputs into one score per input.

    mean: (1/M) Σ_m r_m.  wco: min_m r_m.  uwo: mean − λ · Var_m(r_m) (population variance).
    SPEC §6 (Coste et al. 2024 eqs. 1–3). WCO ≤ mean always; UWO ≤ mean for λ ≥ 0.
    scores: (M, ...) with M ≥ 1. Returns (...) float64.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 0 or s.shape[0] < 1:
        raise GoodhartError(f"aggregate needs scores of shape (M, ...) with M >= 1, got {s.shape}")
    if method == "mean":
        return s.mean(axis=0)
    if method == "wco":
        return s.min(axis=0)
    if method == "uwo":
        if not np.isfinite(lam) or lam < 0:
            raise GoodhartError(f"aggregate: UWO needs a finite λ >= 0, got {lam}")
        return s.mean(axis=0) - lam * s.var(axis=0)
    raise GoodhartError(f"unknown aggregation {method!r}; choose one of {', '.join(METHODS)}")
