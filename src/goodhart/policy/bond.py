"""BOND and J-BOND pieces (SPEC §9; Sessa et al. 2024): small pure functions, shapes stated.

B prompts; A anchor samples per prompt.
"""

import math

import torch

LOG_16 = math.log(16.0)


def jbond_reward(policy_scores: torch.Tensor, anchor_scores: torch.Tensor) -> torch.Tensor:
    """r_J(y) = −log 16 if both anchor samples score strictly higher than the policy sample y, else 0.

    E[r_J] = −log 16 · (1 − p≤)², which equals log 0.5 at p≤ = 0.5 (SPEC §9; BOND §5, J-BOND).
    policy_scores: (B,); anchor_scores: (B, 2). Returns (B,) float.
    """
    if anchor_scores.ndim != 2 or anchor_scores.shape != (policy_scores.shape[0], 2):
        raise ValueError(f"jbond_reward needs (B,) and (B, 2) scores, got {policy_scores.shape}, {anchor_scores.shape}")
    both_better = (anchor_scores > policy_scores[:, None]).all(dim=1)
    return torch.where(both_better, -LOG_16, 0.0).to(torch.float32)


def log_p_le(policy_scores: torch.Tensor, anchor_scores: torch.Tensor) -> torch.Tensor:
    """log p̂≤(y): share of anchor samples scoring ≤ y, smoothed as (count + 1/2)/(A + 1) to stay finite.

    The backward-BOND reward: backward BOND = KL-regularised RL with reward log p≤ and
    β_RL = 1/(N − 1) (SPEC §9, BOND eq. 8). policy_scores: (B,); anchor_scores: (B, A). Returns (B,).
    """
    count = (anchor_scores <= policy_scores[:, None]).sum(dim=1).to(torch.float64)
    return torch.log((count + 0.5) / (anchor_scores.shape[1] + 1.0)).to(torch.float32)


def jeffreys(loss_forward: torch.Tensor, loss_backward: torch.Tensor, beta: float = 0.5) -> torch.Tensor:
    """J_β = (1 − β)·KL_fwd + β·KL_bwd (SPEC §9, BOND eq. 10); β = 0.5 in the paper."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"Jeffreys β must lie in [0, 1], got {beta}")
    return (1.0 - beta) * loss_forward + beta * loss_backward


@torch.no_grad()
def ema_update(anchor: torch.nn.Module, policy: torch.nn.Module, eta: float = 0.02) -> None:
    """Moving anchor: θ_anchor ← (1 − η)·θ_anchor + η·θ for every floating parameter (SPEC §9, η = 0.02)."""
    if not 0.0 < eta <= 1.0:
        raise ValueError(f"EMA rate η must lie in (0, 1], got {eta}")
    for a, p in zip(anchor.parameters(), policy.parameters(), strict=True):
        a.lerp_(p.detach(), eta)
