"""`goodhart recommend` on synthetic curves with a known peak and on a smoke run."""

import json

import numpy as np
import pytest

from goodhart import kl_bound
from goodhart.commands.recommend import n_for_kl, recommend_n

from helpers import goodhart


def test_n_for_kl_inverts_the_bound():
    for n in (1, 2, 16, 300):
        assert n_for_kl(kl_bound(n)) == pytest.approx(n, rel=1e-9)


def test_recommend_finds_a_known_peak():
    ns = np.arange(1, 513)
    d = np.sqrt(kl_bound(ns))
    alpha, beta = 1.0, 0.25  # peak d* = 2, gold 1
    rng = np.random.default_rng(0)
    rec = recommend_n(ns, d * (alpha - beta * d) + rng.normal(0, 0.01, ns.size), tolerance=0.05)
    assert rec["n_opt"] == pytest.approx(n_for_kl(4.0), rel=0.05)
    assert rec["n_opt_ci"][0] < rec["n_opt"] < rec["n_opt_ci"][1]
    assert rec["peak_gold_pred"] == pytest.approx(1.0, abs=0.02)
    # the hedged n keeps the lower bound within the tolerance and goes no further
    assert rec["gold_lcb_hedged"] >= rec["peak_gold_pred"] - 0.05
    assert rec["n_hedged"] > rec["n_opt"]
    rising = recommend_n(ns, 0.5 * d, tolerance=0.05)
    assert rising["n_opt"] is None and rising["n_hedged"] == 512


def test_recommend_on_a_run_validates_on_held_out_prompts(tmp_path):
    out = tmp_path / "run"
    res = goodhart("run", "--world", "smoke", "--out", str(out), "--set", "data.eval_prompts=6")
    assert res.returncode == 0, res.stderr
    res = goodhart("recommend", str(out), "--tolerance", "0.05")
    assert res.returncode == 0, res.stderr
    rec = json.loads((out / "recommend.json").read_text())
    val = rec["validation"]
    assert val["fit_prompts"] == 3 and val["held_out_prompts"] == 3
    assert set(val["realised_gold"]) <= {"n_opt", "n_hedged"} and "n_hedged" in val["realised_gold"]
    assert "held-out prompts (3)" in res.stdout
