"""Every option that changes behaviour has a test that fails if the option were ignored (STYLE.md):
the J-BOND anchor's EMA rate, Jeffreys β, the REINFORCE baseline decay, reward shaping, and the RM's
weight decay — each read through the real training step on the smoke world."""

import copy

import numpy as np
import pytest
import torch

from goodhart.config import PolicyTrainConfig, RMTraining
from goodhart.policy import train
from goodhart.reward.load import RewardModel
from goodhart.worlds import load_world


def _setup(**settings):
    cfg = PolicyTrainConfig(world="smoke", reward_model="-", device="cpu", lr=3e-3, batch_prompts=4,
                            sampling={"max_new_tokens": 8}, **settings)
    world = load_world(cfg)
    rm = RewardModel([world.make_proxy(0)], name="untrained")
    device = torch.device("cpu")
    return train.Setup(cfg, world, rm, device), train.build_models(cfg, world, device), world.prompts[:4]


def _step(setup, models, prompts, state=None, seed=0):
    torch.manual_seed(seed)
    return train.train_step(setup, models, prompts, state or {"step": 0, "baseline": 0.0, "norm": None})


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_ema_moves_the_anchor_by_its_rate():
    """θ_anchor ← (1 − η)θ_anchor + ηθ after the step: η = 0 leaves the anchor at the initial policy."""
    moved = {}
    for eta in (0.0, 0.5):
        s, m, prompts = _setup(method="jbond", ema=eta)
        before, policy_before = _params(m.anchor).clone(), _params(m.policy).clone()
        _step(s, m, prompts)
        expected = (1 - eta) * before + eta * _params(m.policy)
        assert torch.allclose(_params(m.anchor), expected, atol=1e-6)
        assert not torch.equal(_params(m.policy), policy_before)
        moved[eta] = (_params(m.anchor) - before).abs().max().item()
    assert moved[0.0] == 0.0 and moved[0.5] > 1e-5


def test_jeffreys_beta_weights_forward_and_backward():
    """Same samples (same seed), β = 0.25 vs 0.75: the loss is (1 − β)·forward + β·backward of that step."""
    for beta in (0.25, 0.75):
        s, m, prompts = _setup(method="bond", bond_divergence="jeffreys", jeffreys_beta=beta)
        torch.manual_seed(0)
        loss, stats = train.bond_batch(s, m, prompts)
        assert loss.item() == pytest.approx((1 - beta) * stats["loss/forward"] + beta * stats["loss/backward"],
                                            rel=1e-5)


def test_baseline_decay_sets_the_running_baseline():
    """From baseline 0, one REINFORCE step leaves (1 − decay)·mean reward of the batch."""
    out = {}
    for decay in (0.0, 0.9):
        s, m, prompts = _setup(method="reinforce", samples_per_prompt=2, baseline_decay=decay)
        state = {"step": 0, "baseline": 0.0, "norm": None}
        stats = _step(s, m, prompts, state)
        out[decay] = state["baseline"]
        assert state["baseline"] == pytest.approx((1 - decay) * stats["reward/proxy"], rel=1e-5)
    assert out[0.0] != pytest.approx(out[0.9])


def test_reward_shaping_changes_the_advantages():
    """sigmoid_ref replaces r by mean_j σ(r − r_ref,j) − ½ ∈ (−½, ½): same policy samples, other advantages."""
    adv = {}
    for shaping in ("none", "sigmoid_ref"):
        s, m, prompts = _setup(method="rloo", samples_per_prompt=2, reward_shaping=shaping)
        torch.manual_seed(0)
        _, stats = train.rl_batch(s, m, prompts, {"baseline": 0.0})
        adv[shaping] = stats["policy/advantage_abs"]
    assert adv["sigmoid_ref"] < 1.0 and adv["sigmoid_ref"] != pytest.approx(adv["none"])


def test_rm_weight_decay_shrinks_the_weights():
    from goodhart.reward.train import Comparisons, train_reward_model
    from goodhart.worlds import smoke

    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "dull", "great", "awful"]
    data = Comparisons([f"p{i}" for i in range(64)], [" ".join(rng.choice(words, 4)) for _ in range(64)],
                       [" ".join(rng.choice(words, 4)) for _ in range(64)])
    norms = {}
    base, tok = smoke.make_proxy(seed=0)
    for wd in (0.0, 0.5):
        model = copy.deepcopy(base)
        train_reward_model(model, tok, data, RMTraining(lr=5e-3, epochs=3, batch_size=16, max_length=32,
                                                        weight_decay=wd), seed=0)
        norms[wd] = _params(model).norm().item()
    assert norms[0.5] < norms[0.0] - 1e-3
