"""SPEC §5: gold-labelled comparisons, label noise, Bradley–Terry loss, normalisation."""

import numpy as np
import pytest
import torch

from goodhart import make_pairs, normalisation
from goodhart.reward.bt import bt_loss


def test_deterministic_labels_follow_gold_and_drop_ties():
    gold = np.array([[0.0, 1.0, 1.0, 3.0]])  # 6 pairs, one tie (1 vs 1)
    pairs = make_pairs(gold, np.random.default_rng(0), max_pairs=100)
    assert len(pairs) == 5
    assert np.all(gold[0, pairs[:, 1]] > gold[0, pairs[:, 2]])
    assert not pairs[:, 3].any()


def test_pairs_stay_within_prompt_and_respect_max():
    gold = np.random.default_rng(1).normal(size=(5, 6))
    pairs = make_pairs(gold, np.random.default_rng(0), max_pairs=20)
    assert len(pairs) == 20 and pairs[:, 0].max() < 5
    assert np.all(gold[pairs[:, 0], pairs[:, 1]] > gold[pairs[:, 0], pairs[:, 2]])


def test_label_noise_flips_exact_fraction_and_records_it():
    gold = np.random.default_rng(2).normal(size=(10, 8))
    pairs = make_pairs(gold, np.random.default_rng(0), max_pairs=200, noise=0.25)
    flipped = pairs[:, 3] == 1
    assert flipped.sum() == 50
    wins = gold[pairs[:, 0], pairs[:, 1]] > gold[pairs[:, 0], pairs[:, 2]]
    np.testing.assert_array_equal(wins, ~flipped)  # exactly the flipped pairs disagree with gold


def test_sampled_labels_limits():
    gold = np.random.default_rng(3).normal(size=(20, 8))
    sharp = make_pairs(gold, np.random.default_rng(0), 10_000, mode="sampled", temperature=1e-6)
    assert np.all(gold[sharp[:, 0], sharp[:, 1]] > gold[sharp[:, 0], sharp[:, 2]])
    flat = make_pairs(gold, np.random.default_rng(0), 10_000, mode="sampled", temperature=1e6)
    agree = np.mean(gold[flat[:, 0], flat[:, 1]] > gold[flat[:, 0], flat[:, 2]])
    assert 0.4 < agree < 0.6


def test_bt_loss_hand_values():
    """margin 0 → log 2; margins ±1 → mean(log(1+e^−1), log(1+e^1)) = (0.31326 + 1.31326)/2 = 0.81326."""
    loss, stats = bt_loss(torch.tensor([0.0]), torch.tensor([0.0]))
    assert loss.item() == pytest.approx(np.log(2))
    loss, stats = bt_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert loss.item() == pytest.approx(0.813262, abs=1e-6)
    assert stats["reward/accuracy"] == 0.5 and stats["reward/margin"] == 0.0


def test_normalisation_constants():
    x = np.array([1.0, 2.0, 3.0, 6.0])
    shift, scale = normalisation(x)
    assert shift == 3.0 and scale == pytest.approx(np.sqrt(3.5))
    z = (x - shift) / scale
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)
    assert normalisation(x, scale=False) == (3.0, 1.0)
    assert normalisation(np.ones(3)) == (1.0, 1.0)
