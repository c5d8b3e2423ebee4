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


def shaped_reward(proxy: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bounded, centred proxy reward relative to reference-policy samples of the same prompt:
    r̃_i = mean_j σ(r_i − r_ref,j) − ½ ∈ (−½, ½); 0 when a sample is as good as the reference's.

    Caps how much any one sample can gain, however far the proxy can be pushed (a preference-
    style transform of the reward, cf. "reward shaping" against overoptimization).
    proxy: (B, k) policy-sample rewards; ref: (B, m) reference-sample rewards. Returns (B, k).
    """
    if proxy.dim() != 2 or ref.dim() != 2 or proxy.shape[0] != ref.shape[0]:
        raise ValueError(f"shaped_reward needs (B, k) and (B, m), got {tuple(proxy.shape)} and {tuple(ref.shape)}")
    return torch.sigmoid(proxy[:, :, None] - ref[:, None, :]).mean(-1) - 0.5
