"""SPEC §7 KL estimators (and where the KL goes in training), SPEC §9 BOND / J-BOND pieces."""

import math

import pytest
import torch

from goodhart.policy.bond import LOG_16, ema_update, jbond_reward, jeffreys, log_p_le
from goodhart.policy.kl import k3_loss, kl_in_reward, kl_per_sequence, mean_stderr


def _toy(K=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(K, generator=g, dtype=torch.float64, requires_grad=True)
    ref_logits = torch.randn(K, generator=g, dtype=torch.float64)
    return theta, torch.log_softmax(ref_logits, -1)


def test_estimators_hand_values_and_masking():
    """One token with ℓ = log 2: k1 = 0.693147, k2 = ℓ²/2 = 0.240227, k3 = e^{−ℓ} − 1 + ℓ = 0.193147.
    A masked token contributes nothing."""
    logp = torch.tensor([[math.log(0.5), 5.0]])
    ref = torch.tensor([[math.log(0.25), -5.0]])
    mask = torch.tensor([[True, False]])
    k = kl_per_sequence(logp, ref, mask)
    assert k["k1"].item() == pytest.approx(0.693147, abs=1e-6)
    assert k["k2"].item() == pytest.approx(0.240227, abs=1e-6)
    assert k["k3"].item() == pytest.approx(0.193147, abs=1e-6)


def test_k1_k3_unbiased_k3_nonnegative():
    theta, logq = _toy()
    logp = torch.log_softmax(theta.detach(), -1)
    exact = (logp.exp() * (logp - logq)).sum().item()
    y = torch.multinomial(logp.exp(), 400_000, replacement=True, generator=torch.Generator().manual_seed(1))
    lp, lq = logp[y][:, None], logq[y][:, None]
    k = kl_per_sequence(lp, lq, torch.ones_like(lp, dtype=torch.bool))
    assert torch.all(k["k3"] >= 0) and (k["k1"] < 0).any()
    for name in ("k1", "k3"):
        mean, se = mean_stderr(k[name])
        assert abs(mean - exact) < 4 * se + 1e-4, name


def test_kl_placement_gradients_exact():
    """On a categorical policy the expectations are sums, so each estimator's expected gradient is exact:
    k1-in-reward (score function) gives ∇KL(π‖π_ref); differentiating k3 gives ∇KL(π_ref‖π)."""
    theta, logq = _toy()
    logp = torch.log_softmax(theta, -1)
    p = logp.exp()
    grad_fwd = torch.autograd.grad((p * (logp - logq)).sum(), theta, retain_graph=True)[0]
    grad_rev = torch.autograd.grad((logq.exp() * (logq - logp)).sum(), theta, retain_graph=True)[0]
    K = theta.shape[0]
    mask = torch.ones(K, 1, dtype=torch.bool)
    # score function with reward −β·k1, β = 1, weighted by π(y) over every outcome y: −E[∇log π · R] ascent → loss
    shaped = kl_in_reward(torch.zeros(K, dtype=torch.float64), logp[:, None], logq[:, None], mask, beta=1.0)
    g_k1 = torch.autograd.grad(-(p.detach() * shaped * logp).sum(), theta, retain_graph=True)[0]
    torch.testing.assert_close(g_k1, grad_fwd)
    # per-token k3 as a loss, samples fixed: Σ_y π(y)·∇k3(y)
    per_y = kl_per_sequence(logp[:, None], logq[:, None], mask)["k3"]
    g_k3 = torch.autograd.grad((p.detach() * per_y).sum(), theta)[0]
    torch.testing.assert_close(g_k3, grad_rev)
    assert not torch.allclose(g_k3, grad_fwd, atol=1e-3)
    assert k3_loss(logp[:, None], logq[:, None], mask).item() > 0


def test_jbond_reward_and_its_mean():
    y = torch.tensor([0.0, 1.0, 2.0, 1.0])
    anchors = torch.tensor([[1.0, 2.0], [0.0, 2.0], [3.0, 4.0], [1.0, 1.5]])
    assert jbond_reward(y, anchors).tolist() == pytest.approx([-LOG_16, 0.0, -LOG_16, 0.0])
    # E[r_J] = −log 16 (1 − p≤)²; with continuous i.i.d. scores and y at quantile 0.5: log 0.5
    g = torch.Generator().manual_seed(0)
    a = torch.rand(200_000, 2, generator=g)
    r = jbond_reward(torch.full((200_000,), 0.5), a)
    assert r.mean().item() == pytest.approx(math.log(0.5), abs=0.01)


def test_log_p_le_jeffreys_ema():
    lp = log_p_le(torch.tensor([0.0, 10.0]), torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))
    assert lp.tolist() == pytest.approx([math.log(0.5 / 4), math.log(3.5 / 4)])
    assert jeffreys(torch.tensor(2.0), torch.tensor(4.0), 0.25).item() == pytest.approx(2.5)
    anchor, policy = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    before = anchor.weight.detach().clone()
    ema_update(anchor, policy, eta=0.02)
    torch.testing.assert_close(anchor.weight, 0.98 * before + 0.02 * policy.weight.detach())
    with pytest.raises(ValueError):
        ema_update(anchor, policy, eta=0.0)


def test_rloo_and_loss_hand_values():
    """RLOO, SPEC §8: R = [1, 3, 5] → A_i = R_i − mean_{j≠i} R_j = [1 − 4, 3 − 3, 5 − 2] = [−3, 0, 3].
    pg_loss: −A·Σ_t log π = −(2 · (−1 − 1)) = 4. nll_loss counts only valid tokens: −(−1) = 1."""
    from goodhart.policy.losses import nll_loss, pg_loss, rloo_advantages

    torch.testing.assert_close(rloo_advantages(torch.tensor([[1.0, 3.0, 5.0]])), torch.tensor([[-3.0, 0.0, 3.0]]))
    loss, _ = pg_loss(torch.tensor([[-1.0, -1.0]]), torch.ones(1, 2), torch.tensor([2.0]))
    assert loss.item() == pytest.approx(4.0)
    loss, _ = nll_loss(torch.tensor([[-1.0, -2.0]]), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        rloo_advantages(torch.tensor([[1.0], [2.0]]))


def test_shaped_reward_hand_values():
    import math

    import torch

    from goodhart.policy.losses import shaped_reward

    proxy = torch.tensor([[1.0, 0.0]])
    ref = torch.tensor([[0.0, 2.0]])
    # sample 0: (σ(1) + σ(−1))/2 − ½ = 0 ; sample 1: (σ(0) + σ(−2))/2 − ½ = σ(−2)/2 − ¼
    want = [0.0, 1 / (1 + math.exp(2)) / 2 - 0.25]
    assert torch.allclose(shaped_reward(proxy, ref), torch.tensor([want]), atol=1e-7)
    big = shaped_reward(torch.tensor([[1e6]]), torch.tensor([[0.0]]))
    assert big.item() == 0.5  # bounded however far the proxy is pushed
