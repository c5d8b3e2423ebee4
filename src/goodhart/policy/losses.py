"""Policy losses: pure functions returning (loss, stats). Shapes: B sequences, K samples per prompt, T tokens."""

import torch

from goodhart.policy.bond import jbond_reward, jeffreys, log_p_le
from goodhart.policy.kl import k3_loss, kl_in_reward


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


def rl_loss(logp: torch.Tensor, logp_ref: torch.Tensor, reward: torch.Tensor, valid_mask: torch.Tensor, *,
            k: int, baseline: float | None = None, k3_coef: float = 0.0) -> tuple[torch.Tensor, dict]:
    """RLOO (baseline None) or REINFORCE with a running baseline, plus an optional k3 KL loss (SPEC §7–§8).

    A = RLOO advantages of `reward` within each prompt's k samples, or reward − baseline;
    loss = −mean_b A_b · Σ_t log π(y_bt)  [+ k3_coef · mean_b Σ_t k3_t].
    `reward` is the sequence reward already penalised by any KL-in-reward term (kl_in_reward).
    logp (with grad), logp_ref, valid_mask: (B·k, T); reward: (B·k,).
    """
    adv = rloo_advantages(reward.view(-1, k)).view(-1) if baseline is None else reward - baseline
    loss, stats = pg_loss(logp, valid_mask, adv)
    if k3_coef > 0:
        loss = loss + k3_coef * k3_loss(logp, logp_ref, valid_mask)
    return loss, stats


def bond_loss(logp_best: torch.Tensor | None, best_mask: torch.Tensor | None, logp: torch.Tensor | None,
              logp_anchor: torch.Tensor | None, valid_mask: torch.Tensor | None, proxy: torch.Tensor | None,
              anchor_scores: torch.Tensor, *, k: int, beta: float, jbond: bool, bond_n: int,
              beta_kl: float = 0.0) -> tuple[torch.Tensor, dict]:
    """BOND's Jeffreys loss J_β = (1 − β)·forward + β·backward (SPEC §9, BOND eqs. 8–10; J-BOND §5).

    forward (β < 1): NLL of the anchor's best-of-A sample of each prompt, logp_best/best_mask (B, T);
    backward (β > 0): policy gradient on the policy's own k samples per prompt, logp (with grad) and
    logp_anchor (B·k, T), proxy (B·k,), against the anchor's scores (B, A) — reward log p̂≤ with
    β_RL = 1/(N − 1) for BOND, or J-BOND's r_J (minus beta_kl·k1 when beta_kl > 0).
    """
    stats, loss = {}, 0.0
    if beta < 1:
        loss, s = nll_loss(logp_best, best_mask)
        stats["loss/forward"] = s["loss/nll"]
    if beta > 0:
        rep = anchor_scores.repeat_interleave(k, dim=0)
        if jbond:
            reward = jbond_reward(proxy, rep)
            if beta_kl > 0:
                reward = kl_in_reward(reward, logp.detach(), logp_anchor, valid_mask, beta_kl)
        else:
            reward = kl_in_reward(log_p_le(proxy, rep), logp.detach(), logp_anchor, valid_mask, 1.0 / (bond_n - 1))
        adv = rloo_advantages(reward.view(-1, k)).view(-1) if k > 1 else reward - reward.mean()
        bwd, s = pg_loss(logp, valid_mask, adv)
        loss = jeffreys(loss, bwd, beta) if beta < 1 else bwd
        stats |= {"loss/backward": s["loss/pg"], "reward/proxy": proxy.mean().item(), "reward/bond": reward.mean().item()}
    return loss, stats
