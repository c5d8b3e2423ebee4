"""SPEC §4: the exact Best-of-n distribution and KL on a finite outcome set."""

import numpy as np
import pytest

from goodhart import GoodhartError, bon_distribution, bon_kl, kl_bound


def test_spec_worked_example():
    """π_ref = [0.5, 0.3, 0.2], r = [1, 2, 3]; p≤ = [0.5, 0.8, 1], p< = [0, 0.5, 0.8].
    n = 2: p≤² − p<² = [0.25, 0.64 − 0.25, 1 − 0.64] = [0.25, 0.39, 0.36].
    n = 4: [0.0625, 0.4096 − 0.0625, 1 − 0.4096] = [0.0625, 0.3471, 0.5904]."""
    ref, r = [0.5, 0.3, 0.2], [1.0, 2.0, 3.0]
    np.testing.assert_allclose(bon_distribution(ref, r, 2), [0.25, 0.39, 0.36], atol=1e-12)
    np.testing.assert_allclose(bon_distribution(ref, r, 4), [0.0625, 0.3471, 0.5904], atol=1e-12)
    assert bon_kl(ref, r, 2) == pytest.approx(0.140638, abs=1e-6) and bon_kl(ref, r, 2) <= kl_bound(2)
    assert bon_kl(ref, r, 4) == pytest.approx(0.559751, abs=1e-6) and bon_kl(ref, r, 4) <= kl_bound(4)


def _random_case(rng, K, ties):
    ref = rng.dirichlet(np.ones(K))
    r = rng.integers(0, 3, K).astype(float) if ties else rng.normal(size=K)
    return ref, r


@pytest.mark.parametrize("ties", [False, True])
def test_properties(ties):
    rng = np.random.default_rng(0)
    for _ in range(20):
        ref, r = _random_case(rng, 7, ties)
        for n in (1, 2, 5, 30):
            q = bon_distribution(ref, r, n)
            assert q.sum() == pytest.approx(1.0) and np.all(q >= 0)
            assert bon_kl(ref, r, n) <= kl_bound(n) + 1e-9
        np.testing.assert_allclose(bon_distribution(ref, r, 1), ref, atol=1e-12)


def test_unique_worst_gets_ref_to_the_n():
    ref, r = np.array([0.4, 0.35, 0.25]), np.array([-1.0, 0.5, 2.0])
    assert bon_distribution(ref, r, 3)[0] == pytest.approx(0.4**3)


def test_composition_with_distinct_rewards():
    rng = np.random.default_rng(1)
    ref, r = _random_case(rng, 9, ties=False)
    np.testing.assert_allclose(bon_distribution(bon_distribution(ref, r, 3), r, 4), bon_distribution(ref, r, 12),
                               atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_matches_monte_carlo_max_of_n(ties):
    """Simulate: draw n from π_ref, keep the argmax reward, break ties uniformly at random."""
    rng = np.random.default_rng(2)
    ref, r = _random_case(rng, 5, ties)
    n, trials = 4, 200_000
    draws = rng.choice(5, size=(trials, n), p=ref)
    rewards = r[draws] + 1e-9 * rng.random((trials, n))  # random tie-breaking among equal rewards
    picks = draws[np.arange(trials), rewards.argmax(axis=1)]
    empirical = np.bincount(picks, minlength=5) / trials
    np.testing.assert_allclose(empirical, bon_distribution(ref, r, n), atol=4e-3)


def test_batched_rows_and_errors():
    rng = np.random.default_rng(3)
    refs = rng.dirichlet(np.ones(6), size=4)
    rs = rng.normal(size=(4, 6))
    out = bon_distribution(refs, rs, 3)
    for i in range(4):
        np.testing.assert_allclose(out[i], bon_distribution(refs[i], rs[i], 3))
    assert bon_kl(refs, rs, 3).shape == (4,)
    with pytest.raises(GoodhartError, match="sum to 1"):
        bon_distribution([0.5, 0.6], [1, 2], 2)
    with pytest.raises(GoodhartError, match="integer >= 1"):
        bon_distribution([0.5, 0.5], [1, 2], 0)
