"""WARM: weight-averaged reward models (SPEC §6; Ramé et al. 2024, eq. 2)."""

import copy

import torch

from goodhart.errors import GoodhartError


def weight_average(models: list, weights=None):
    """A new model of the members' class whose every parameter and buffer is Σ_m w_m θ_m.

    SPEC §6 (WARM eq. 2). Uniform weights by default; weights must be ≥ 0 and are normalised to
    sum to 1. The score head is averaged like every other tensor. Integer buffers (e.g. position
    ids) must be identical across members and are copied. Members must share class, config and
    every tensor's name and shape; otherwise a GoodhartError names the first difference.
    models: M ≥ 1 torch modules (e.g. AutoModelForSequenceClassification). Returns a new module.
    """
    if not models:
        raise GoodhartError("weight_average needs at least one model")
    M = len(models)
    w = torch.full((M,), 1.0 / M, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    if w.shape != (M,) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise GoodhartError(f"weight_average needs {M} non-negative weights with a positive sum, got {weights}")
    w = w / w.sum()
    first = models[0]
    states = [m.state_dict() for m in models]
    for i, (m, state) in enumerate(zip(models, states, strict=True)):
        if type(m) is not type(first):
            raise GoodhartError(f"weight_average: member {i} is a {type(m).__name__}, member 0 a {type(first).__name__}")
        if state.keys() != states[0].keys():
            diff = sorted(set(state) ^ set(states[0]))[:3]
            raise GoodhartError(f"weight_average: member {i} has different tensors than member 0 (e.g. {diff})")
        for name, t in state.items():
            if t.shape != states[0][name].shape:
                raise GoodhartError(
                    f"weight_average: {name} has shape {tuple(t.shape)} in member {i} but "
                    f"{tuple(states[0][name].shape)} in member 0 (architectures differ)"
                )
    averaged = {}
    for name, t0 in states[0].items():
        if t0.is_floating_point():
            acc = sum(w[m].item() * states[m][name].to(torch.float64) for m in range(M))
            averaged[name] = acc.to(t0.dtype)
        else:
            if any(not torch.equal(states[m][name], t0) for m in range(1, M)):
                raise GoodhartError(f"weight_average: integer buffer {name} differs between members")
            averaged[name] = t0.clone()
    out = copy.deepcopy(first)
    out.load_state_dict(averaged)
    return out
