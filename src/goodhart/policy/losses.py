"""Policy losses: pure functions returning (loss, stats). Shapes: B sequences, K samples per prompt, T tokens."""

import torch


def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """A_i = R_i − mean_{j≠i} R_j within each prompt's K samples (SPEC §8; Ahmadian et al. 2024).

    rewards: (B, K) with K ≥ 2. Returns (B, K).
    """
    if rewards.ndim != 2 or rewards.shape[1] < 2:
        raise ValueError(f"RLOO needs (B, K) rewards with K >= 2, got {tuple(rewards.shape)}")
    K = rewards.shape[1]
    return K / (K - 1) * (rewards - rewards.mean(dim=1, keepdim=True))


def pg_loss(logp: torch.Tensor, valid_mask: torch.Tensor, advantages: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Score-function loss −mean_b A_b · Σ_t log π(y_bt); A is treated as a constant.

    logp, valid_mask: (B, T); advantages: (B,). SPEC §8 (REINFORCE, Williams 1992).
    """
    seq_logp = (logp * valid_mask).sum(-1)
    loss = -(advantages.detach() * seq_logp).mean()
    return loss, {"loss/pg": loss.item(), "policy/advantage_abs": advantages.abs().mean().item()}


def nll_loss(logp: torch.Tensor, valid_mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Mean over sequences of −Σ_t log π(y_t): maximum likelihood on target samples (forward BOND, SPEC §9).

    logp, valid_mask: (B, T).
    """
    loss = -(logp * valid_mask).sum(-1).mean()
    return loss, {"loss/nll": loss.item()}
