"""The pure policy losses (policy/losses.py) on hand-made tensors: rl_loss (RLOO / REINFORCE, k3 term)
and bond_loss (forward, backward, Jeffreys mix, J-BOND reward), each against the equation it states."""

import math

import pytest
import torch

from goodhart.policy.kl import k3_loss
from goodhart.policy.losses import bond_loss, rl_loss


def _logp(values):
    return torch.tensor(values, dtype=torch.float32, requires_grad=True)


def test_rl_loss_rloo_hand_value():
    """One prompt, k = 2 samples with rewards 1 and 3: RLOO advantages A = r_i − r_other = −2, +2.
    Sequence log-probs −1 and −2 (one valid token each): loss = −mean(A · logp) = −(2 + (−4))/2 = 1."""
    logp = _logp([[-1.0], [-2.0]])
    mask = torch.ones(2, 1)
    loss, stats = rl_loss(logp, logp.detach(), torch.tensor([1.0, 3.0]), mask, k=2)
    assert loss.item() == pytest.approx(1.0)
    assert stats["policy/advantage_abs"] == pytest.approx(2.0)


def test_rl_loss_reinforce_uses_the_baseline():
    """Baseline 2: A = (1 − 2, 3 − 2) = (−1, 1); loss = −((−1)(−1) + (1)(−2))/2 = 0.5 (RLOO would give 1)."""
    logp = _logp([[-1.0], [-2.0]])
    loss, _ = rl_loss(logp, logp.detach(), torch.tensor([1.0, 3.0]), torch.ones(2, 1), k=2, baseline=2.0)
    assert loss.item() == pytest.approx(0.5)


def test_rl_loss_k3_term_adds_coef_times_k3():
    logp = _logp([[-1.0, -0.5], [-2.0, -0.1]])
    ref = torch.tensor([[-1.5, -0.7], [-1.0, -0.3]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    reward = torch.tensor([0.2, 0.4])
    plain, _ = rl_loss(logp, ref, reward, mask, k=2)
    with_k3, _ = rl_loss(logp, ref, reward, mask, k=2, k3_coef=0.3)
    assert (with_k3 - plain).item() == pytest.approx(0.3 * k3_loss(logp, ref, mask).item(), rel=1e-6)
    assert k3_loss(logp, ref, mask).item() > 0


def _bond_inputs():
    torch.manual_seed(0)
    B, k, T = 2, 2, 3  # 2 prompts, 2 policy samples each, 2 anchor samples each, 3 tokens
    return dict(logp_best=_logp(torch.randn(B, T).tolist()), best_mask=torch.ones(B, T),
                logp=_logp(torch.randn(B * k, T).tolist()), logp_anchor=torch.randn(B * k, T),
                valid_mask=torch.ones(B * k, T), proxy=torch.tensor([0.1, 0.9, -0.5, 0.3]),
                anchor_scores=torch.tensor([[0.5, 0.2], [0.0, 0.4]]))


def test_bond_loss_forward_is_the_nll_of_the_best_anchor_sample():
    x = _bond_inputs()
    loss, stats = bond_loss(**x, k=2, beta=0.0, jbond=False, bond_n=2)
    assert loss.item() == pytest.approx(-x["logp_best"].sum(-1).mean().item())
    assert set(stats) == {"loss/forward"}


def test_bond_loss_jeffreys_is_the_beta_mix_of_forward_and_backward():
    x = _bond_inputs()
    fwd, _ = bond_loss(**x, k=2, beta=0.0, jbond=False, bond_n=2)
    bwd, s = bond_loss(**x, k=2, beta=1.0, jbond=False, bond_n=2)
    mix, _ = bond_loss(**x, k=2, beta=0.25, jbond=False, bond_n=2)
    assert mix.item() == pytest.approx(0.75 * fwd.item() + 0.25 * bwd.item(), rel=1e-6)
    assert {"loss/backward", "reward/proxy", "reward/bond"} <= set(s) and "loss/forward" not in s


def test_jbond_reward_in_bond_loss_is_minus_log16_when_both_anchors_win():
    """Policy samples 0.1 and 0.9 against anchors (0.5, 0.2): 0.1 loses to both → −log 16, 0.9 → 0;
    −0.5 and 0.3 against (0.0, 0.4): −0.5 loses to both → −log 16, 0.3 → 0. Mean reward = −log 16 / 2."""
    x = _bond_inputs()
    _, stats = bond_loss(**x, k=2, beta=1.0, jbond=True, bond_n=2)
    assert stats["reward/bond"] == pytest.approx(-math.log(16) / 2)
    _, penalised = bond_loss(**x, k=2, beta=1.0, jbond=True, bond_n=2, beta_kl=0.5)
    assert penalised["reward/bond"] != pytest.approx(stats["reward/bond"])  # beta_kl is applied
