"""KL between a policy and its reference from per-token log-probabilities (SPEC §7).

Shapes: B sequences, T completion tokens; valid_mask (B, T) is True where a token counts.
"""

import torch


def kl_per_sequence(logp: torch.Tensor, logp_ref: torch.Tensor, valid_mask: torch.Tensor) -> dict:
    """Sequence KL(π‖π_ref) estimates k1, k2, k3 from tokens sampled from π.

    ℓ_t = log π(y_t) − log π_ref(y_t); k1 = Σ ℓ (unbiased, may be < 0); k2 = Σ ℓ²/2 (low variance,
    biased); k3 = Σ (e^{−ℓ} − 1 + ℓ) (unbiased, ≥ 0). SPEC §7 (Schulman, "Approximating KL", 2020).
    logp, logp_ref, valid_mask: (B, T). Returns {"k1", "k2", "k3"} each (B,).
    """
    if logp.shape != logp_ref.shape or logp.shape != valid_mask.shape or logp.ndim != 2:
        raise ValueError(f"need (B, T) logp, logp_ref, valid_mask; got {logp.shape}, {logp_ref.shape}, {valid_mask.shape}")
    m = valid_mask.to(logp.dtype)
    ell = (logp - logp_ref) * m
    return {"k1": ell.sum(-1), "k2": (0.5 * ell**2).sum(-1), "k3": ((torch.exp(-ell) - 1 + ell) * m).sum(-1)}


def mean_stderr(x: torch.Tensor) -> tuple[float, float]:
    """Mean over sequences and its standard error, (B,) → (mean, se); se = 0 for B = 1."""
    x = x.detach().double()
    se = (x.std(unbiased=True) / x.numel() ** 0.5).item() if x.numel() > 1 else 0.0
    return x.mean().item(), se


def kl_in_reward(rewards: torch.Tensor, logp: torch.Tensor, logp_ref: torch.Tensor, valid_mask: torch.Tensor,
                 beta: float) -> torch.Tensor:
    """Sequence reward minus β·k1 (detached): R − β Σ_t ℓ_t, the default KL placement.

    In a score-function (REINFORCE / RLOO) update this gives E_π[∇log π(y) · (R − β Σ ℓ)], whose KL
    part is exactly ∇KL(π‖π_ref) (SPEC §7, §8). rewards: (B,); others (B, T). Returns (B,).
    """
    return rewards - beta * kl_per_sequence(logp, logp_ref, valid_mask)["k1"].detach()


def k3_loss(logp: torch.Tensor, logp_ref: torch.Tensor, valid_mask: torch.Tensor) -> torch.Tensor:
    """Per-token k3 differentiated as a loss (a common library default), mean over sequences.

    Caution (SPEC §7): with samples from π held fixed, its expected gradient is ∇KL(π_ref‖π), the
    reverse direction. Offered as a documented option; tests check the claim exactly.
    """
    return kl_per_sequence(logp, logp_ref, valid_mask)["k3"].mean()
