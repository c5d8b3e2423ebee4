"""BOND on a one-step categorical "policy": sample-based backward and Jeffreys BOND with a fixed anchor
converge to the exact Best-of-N distribution (SPEC §4, §9)."""

import numpy as np
import pytest
import torch

from goodhart import bon_distribution
from goodhart.policy.bond import jeffreys, log_p_le
from goodhart.policy.kl import kl_in_reward
from goodhart.policy.losses import nll_loss, pg_loss


def _kl(p, q):
    return float(np.sum(p * (np.log(p) - np.log(q))))


def distill(beta: float, N: int = 4, K: int = 40, steps: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Train logits θ with J_β from samples only; returns (KL(π_BoN‖π_ref), final KL(π_BoN‖π_θ))."""
    g = torch.Generator().manual_seed(seed)
    ref_logp = torch.log_softmax(torch.randn(K, generator=g, dtype=torch.float64), -1)
    rewards = torch.randn(K, generator=g, dtype=torch.float64)
    target = bon_distribution(ref_logp.exp().numpy(), rewards.numpy(), N)
    theta = ref_logp.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=0.05)
    B, A = 64, 512  # policy samples and anchor samples per step
    one = torch.ones(B, 1, dtype=torch.bool)
    for _ in range(steps):
        logp_all = torch.log_softmax(theta, -1)
        y = torch.multinomial(logp_all.detach().exp(), B, replacement=True, generator=g)
        anchor = torch.multinomial(ref_logp.exp(), A, replacement=True, generator=g)
        # backward term: reward log p≤ − (1/(N−1))·k1, score-function gradient with a mean baseline
        reward = kl_in_reward(log_p_le(rewards[y].float(), rewards[anchor].float().expand(B, A)).double(),
                              logp_all[y][:, None].detach(), ref_logp[y][:, None], one, 1.0 / (N - 1))
        bwd, _ = pg_loss(logp_all[y][:, None], one, reward - reward.mean())
        # forward term: likelihood of the anchor's best-of-N samples
        groups = anchor[: B * N].view(B, N)
        best = groups.gather(1, rewards[groups].argmax(1, keepdim=True))
        fwd, _ = nll_loss(logp_all[best], one)
        loss = jeffreys(fwd, bwd, beta) if beta < 1 else bwd
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = torch.softmax(theta.detach(), -1).numpy()
    return _kl(target, ref_logp.exp().numpy()), _kl(target, final)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_bond_converges_to_bon_distribution(beta):
    start, final = distill(beta)
    print(f"BOND β={beta}: KL(π_BoN‖π) from {start:.4f} (π = π_ref) to {final:.4f}")
    assert start > 0.4
    assert final < 0.05 * start and final < 0.02
