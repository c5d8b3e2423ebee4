"""Gao fits (SPEC §10): recovery of known α, β, closed-form peaks, trends, the chance test."""

import numpy as np
import pytest

import goodhart
from goodhart import GoodhartError, fit_bon, fit_rl
from goodhart.bon.fits import chance_test, chance_threshold, log_trend


def test_exact_curves_recover_parameters_and_closed_form_peaks():
    d = np.linspace(0, 3, 13)
    bon = fit_bon(d, d * (1.2 - 0.3 * d))
    assert bon.alpha == pytest.approx(1.2) and bon.beta == pytest.approx(0.3)
    assert bon.peak_d == pytest.approx(2.0) and bon.peak_reward == pytest.approx(1.2)  # α/2β, α²/4β
    assert bon.r2 == pytest.approx(1.0)
    dd = d[1:]
    rl = fit_rl(dd, dd * (1.0 - 0.5 * np.log(dd)))
    assert rl.alpha == pytest.approx(1.0) and rl.beta == pytest.approx(0.5)
    assert rl.peak_d == pytest.approx(np.e) and rl.peak_reward == pytest.approx(0.5 * np.e)  # exp(α/β − 1), β·d*
    assert rl.predict(0.0) == 0.0 and rl.predict(np.e) == pytest.approx(0.5 * np.e)


def test_noisy_fits_cover_the_truth():
    rng = np.random.default_rng(0)
    d = np.sqrt(goodhart.kl_bound(np.arange(1, 257)))
    covered = {"alpha": 0, "beta": 0}
    for _ in range(40):
        f = fit_bon(d, d * (0.9 - 0.25 * d) + rng.normal(0, 0.05, d.size))
        covered["alpha"] += f.alpha_ci[0] <= 0.9 <= f.alpha_ci[1]
        covered["beta"] += f.beta_ci[0] <= 0.25 <= f.beta_ci[1]
        assert f.peak_d_ci[0] < f.peak_d < f.peak_d_ci[1]
    # 95% intervals: expect ~38 of 40; binomial(40, .95) ≥ 33 has probability > 0.999
    assert covered["alpha"] >= 33 and covered["beta"] >= 33


def test_rising_curve_has_no_peak():
    d = np.linspace(0.1, 2, 10)
    f = fit_bon(d, 0.5 * d + 0.1 * d * d)
    assert f.beta < 0 and f.peak_d is None and f.peak_reward is None



def test_an_rl_curve_whose_peak_lies_beyond_float_range_has_no_peak_and_no_overflow(recwarn):
    dd = np.linspace(0.5, 6, 12)
    f = fit_rl(dd, dd * (1.0 - 0.001 * np.log(dd)))  # d* = e^(α/β − 1) = e^999: no float holds it
    assert f.beta == pytest.approx(0.001) and f.peak_d is None and f.peak_reward is None
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("d, g, msg", [
    ([0.1, 0.2], [0.1, 0.2], "at least 3 points"),
    ([0.1, 0.2, np.nan], [0.1, 0.2, 0.3], "finite"),
    ([0.1, 0.2, 0.3], [0.1, np.inf, 0.3], "finite"),
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], "distinct d"),
    ([-0.1, 0.2, 0.3], [0.1, 0.2, 0.3], ">= 0"),
])
def test_fit_refuses_bad_input(d, g, msg):
    with pytest.raises(GoodhartError, match=msg):
        fit_bon(d, g)


def test_log_trend_extrapolates():
    x = np.array([1e5, 1e6, 1e7, 1e8])
    t = log_trend(x, 0.2 + 0.1 * np.log10(x))
    assert t.slope == pytest.approx(0.1) and t.predict(1e9) == pytest.approx(1.1)
    with pytest.raises(GoodhartError):
        log_trend([1, 2], [1, 2])


def test_chance_test_hand_worked_and_threshold():
    assert chance_test(9, 10) == pytest.approx(11 / 1024)  # P(X ≥ 9 | 10, ½) = (C(10,9) + C(10,10)) / 2^10
    assert chance_test(5, 10) > 0.5
    # 55/100 is not significant (p ≈ 0.18), 60/100 is (p ≈ 0.028)
    assert chance_threshold([64, 128, 256, 512], [52, 55, 60, 70], [100] * 4) == 256
    assert chance_threshold([64, 128], [62, 50], [100, 100]) is None  # the largest must pass
    assert chance_threshold([64, 128], [70, 70], [100, 100]) == 64
