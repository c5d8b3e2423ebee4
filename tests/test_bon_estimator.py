"""SPEC §2 and §3: KL bound values, the unbiased BoN estimator against brute force."""

import itertools
from math import comb

import numpy as np
import pytest

from goodhart import GoodhartError, bon_bootstrap, bon_estimate, bon_weights, default_ns, kl_bound
from goodhart.bon import estimator


def brute_force(select, gold, n):
    """Mean over all size-n subsets of the gold of the subset's select-argmax; ties → mean over tied."""
    vals = []
    for sub in itertools.combinations(range(len(select)), n):
        s = np.array([select[i] for i in sub])
        top = [sub[j] for j in np.flatnonzero(s == s.max())]
        vals.append(np.mean([gold[i] for i in top]))
    return float(np.mean(vals))


def test_spec_worked_example():
    """SPEC §3: s = [0.1, 0.4, 0.3, 0.9], g = [1, 2, 3, 4]. Sorted by s: g = [1, 3, 2, 4].
    n = 2 weights C(i−1, 1)/C(4, 2) = [0, 1, 2, 3]/6 → (0·1 + 1·3 + 2·2 + 3·4)/6 = 19/6.
    n = 1 → mean 2.5; n = 4 → the proxy argmax's gold, 4."""
    est = bon_estimate([0.1, 0.4, 0.3, 0.9], [1, 2, 3, 4], [1, 2, 4])
    np.testing.assert_allclose(est, [2.5, 19 / 6, 4.0], rtol=0, atol=1e-12)
    assert brute_force([0.1, 0.4, 0.3, 0.9], [1, 2, 3, 4], 2) == pytest.approx(19 / 6)


@pytest.mark.parametrize("ties", [False, True])
def test_matches_brute_force(ties):
    rng = np.random.default_rng(0)
    for _ in range(5):
        N = int(rng.integers(5, 10))
        s = rng.integers(0, 3, N).astype(float) if ties else rng.normal(size=N)
        g = rng.normal(size=N)
        ns = np.arange(1, N + 1)
        np.testing.assert_allclose(bon_estimate(s, g, ns), [brute_force(s, g, n) for n in ns], atol=1e-12)


def test_ties_differ_from_first_index_tiebreak():
    """All proxy scores equal: every n must give mean(g), not a value that depends on sample order."""
    g = np.array([5.0, 1.0, 0.0, 2.0])
    np.testing.assert_allclose(bon_estimate(np.zeros(4), g, [1, 2, 3, 4]), np.full(4, 2.0))


def test_batched_leading_dims_equal_rows():
    rng = np.random.default_rng(1)
    s, g = rng.normal(size=(2, 3, 40)), rng.normal(size=(2, 3, 40))
    ns = [1, 3, 17, 40]
    out = bon_estimate(s, g, ns)
    assert out.shape == (2, 3, 4)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(out[i, j], bon_estimate(s[i, j], g[i, j], ns), atol=1e-12)


def test_recurrence_path_equals_log_gamma_weights():
    """Many n use the n → n+1 weight recurrence; compare with the closed-form weights (gammaln)."""
    rng = np.random.default_rng(2)
    s, g = rng.normal(size=(2, 3000)), rng.normal(size=(2, 3000))
    ns = np.arange(1, 3001)
    direct = g[np.arange(2)[:, None], np.argsort(s, axis=1)] @ bon_weights(3000, ns).T
    np.testing.assert_allclose(bon_estimate(s, g, ns), direct, atol=1e-10)


def test_chunking_over_n_is_exact(monkeypatch):
    rng = np.random.default_rng(2)
    s, g = rng.normal(size=300), rng.normal(size=300)
    ns = np.array([1, 2, 7, 50, 120, 300])  # few n: the direct (log-gamma) path
    full = bon_estimate(s, g, ns)
    monkeypatch.setattr(estimator, "_CHUNK_ELEMENTS", 1000)  # 3 n values per chunk
    np.testing.assert_allclose(bon_estimate(s, g, ns), full, atol=1e-13)
    np.testing.assert_allclose(full, bon_estimate(s, g, np.arange(1, 301))[ns - 1], atol=1e-12)


def test_weights_small_exact_and_large_stable():
    w = bon_weights(4, [2])
    np.testing.assert_allclose(w, [[0, 1 / 6, 2 / 6, 3 / 6]])
    assert comb(3, 1) / comb(4, 2) == pytest.approx(w[0, 3])
    N = 100_000
    w = bon_weights(N, [1, 2, 50, 10_000, N])
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    assert w[-1, -1] == 1.0 and w[0, 0] == pytest.approx(1 / N)


def test_large_pool_monotone_in_n_when_select_is_eval():
    rng = np.random.default_rng(3)
    x = rng.normal(size=50_000)
    est = bon_estimate(x, x, default_ns(50_000))
    assert np.all(np.diff(est) > 0)
    # E[max of n standard normals]: n = 2 → 1/sqrt(pi)
    assert bon_estimate(x, x, [2])[0] == pytest.approx(1 / np.sqrt(np.pi), abs=0.02)


@pytest.mark.parametrize("n,expected", [(1, 0.0), (2, 0.1931), (4, 0.6363), (16, 1.8351), (64, 3.1745),
                                        (256, 4.5491), (1000, 5.9088), (12_500, 8.4336), (60_000, 10.0021)])
def test_kl_bound_spec_values(n, expected):
    """SPEC §2: log n − (n − 1)/n, e.g. n = 2: log 2 − 1/2 = 0.19315."""
    assert kl_bound(n) == pytest.approx(expected, abs=1e-4)


def test_kl_bound_vectorised_and_refuses_n_below_1():
    np.testing.assert_allclose(kl_bound(np.array([1, 2])), [0.0, np.log(2) - 0.5])
    with pytest.raises(GoodhartError, match="n >= 1"):
        kl_bound(0)


@pytest.mark.parametrize("ns", [[0], [5], [1.5]])
def test_estimator_refuses_bad_n(ns):
    with pytest.raises(GoodhartError, match="integer n in"):
        bon_estimate([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], np.asarray(ns))


def test_estimator_refuses_nan_and_shape_mismatch():
    with pytest.raises(GoodhartError, match="NaN"):
        bon_estimate([1.0, np.nan], [1.0, 2.0], [1])
    with pytest.raises(GoodhartError, match="same shape"):
        bon_estimate([1.0, 2.0], [1.0], [1])


def test_default_ns():
    assert list(default_ns(5)) == [1, 2, 3, 4, 5]
    ns = default_ns(10_000, max_points=32)
    assert ns[0] == 1 and ns[-1] == 10_000 and len(ns) <= 32 and np.all(np.diff(ns) > 0)


def test_bootstrap_brackets_estimate_and_is_seeded():
    rng = np.random.default_rng(4)
    s, g = rng.normal(size=(6, 64)), rng.normal(size=(6, 64))
    g = g + s  # correlated: BoN gains gold
    ns = [1, 4, 16, 64]
    est = bon_estimate(s, g, ns).mean(axis=0)
    lo, hi = bon_bootstrap(s, g, ns, n_boot=300, seed=7)
    assert np.all(lo <= est + 1e-9) and np.all(est <= hi + 1e-9) and np.all(hi > lo)
    lo2, hi2 = bon_bootstrap(s, g, ns, n_boot=300, seed=7)
    np.testing.assert_array_equal(lo, lo2)
    lo3, _ = bon_bootstrap(s, g, ns, n_boot=300, seed=8)
    assert not np.array_equal(lo, lo3)
