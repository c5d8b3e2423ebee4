"""Soft Best-of-n: limits, sampler frequencies, tilted-distribution KL against direct computation."""

import numpy as np
import pytest

from goodhart import GoodhartError, bon_estimate
from goodhart.bon.soft import (
    selection_weights,
    soft_bon_estimate,
    soft_bon_select,
    tilted_kl,
    tilted_reward,
)


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    proxy = rng.normal(size=(4, 40))
    gold = 0.6 * proxy + rng.normal(size=(4, 40))
    return proxy, gold


def test_lambda_zero_is_best_of_n_and_infinity_the_mean(pool):
    proxy, gold = pool
    ns = [1, 2, 5, 17, 40]
    mean, se = soft_bon_estimate(proxy, gold, ns, [0.0, np.inf], subsets=4000, seed=1)
    hard = bon_estimate(proxy, gold, ns).mean(axis=0)
    assert np.all(np.abs(mean[:, 0] - hard) <= 4 * se[:, 0] + 1e-12)
    assert mean[0, 0] == pytest.approx(hard[0]) and mean[-1, 0] == pytest.approx(hard[-1])  # exact ends
    assert np.all(np.abs(mean[:, 1] - gold.mean()) <= 4 * se[:, 1] + 1e-12)
    assert se[0].max() == 0 and se[-1].max() == 0


def test_soft_selection_interpolates(pool):
    proxy, gold = pool
    mean, _ = soft_bon_estimate(proxy, gold, [16], [0.0, 0.3, 1.0, 10.0, np.inf], subsets=2000)
    g = mean[0]
    assert np.all(np.diff(g) < 0.02)  # gold falls from BoN towards the mean as λ grows
    assert g[0] - g[-1] > 0.5  # hard BoN-16 (λ = 0) is far above the pool mean (λ = ∞)
    assert g[0] - 0.05 > g[2] > g[-1] + 0.05  # λ = 1 lies strictly between: λ is not ignored


def test_sampler_frequencies_match_softmax():
    rng = np.random.default_rng(0)
    r = np.array([0.0, 1.0, 2.0])
    picks = soft_bon_select(np.tile(r, (40000, 1)), 0.7, rng)
    freq = np.bincount(picks, minlength=3) / len(picks)
    assert np.allclose(freq, selection_weights(r, 0.7), atol=0.01)
    assert selection_weights(np.array([1.0, 3.0, 3.0]), 0.0).tolist() == [0.0, 0.5, 0.5]


def test_tilted_kl_matches_direct_computation():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    r = np.array([1.0, -0.5, 0.3, 2.0])
    for lam in (0.1, 0.5, 2.0, 50.0):
        q = p * np.exp(r / lam)
        q /= q.sum()
        assert tilted_kl(p, r, lam) == pytest.approx(np.sum(q * np.log(q / p)))
        assert tilted_reward(p, r, r, lam) == pytest.approx(np.sum(q * r))
    assert tilted_kl(p, r, np.inf) == 0.0
    assert tilted_kl(p, r, 0.0) == pytest.approx(-np.log(0.4))  # all mass on the best outcome
    assert tilted_kl(p, r, 1e-4) == pytest.approx(-np.log(0.4), rel=1e-6)
    with pytest.raises(GoodhartError):
        tilted_kl(p, r, -1.0)
