"""Gold at matched KL (report.matched): hand-worked interpolation, KL to reach a gold on a Best-of-n curve,
and a synthetic truth for the paired interval at a matched d."""

import numpy as np
import pytest

from goodhart.errors import GoodhartError
from goodhart.report.matched import common_d, curve, extra_kl, gold_at, kl_to_reach, matched


def _rows(d, per_prompt):
    return [{"d": x, "gold_prompts": list(col)} for x, col in zip(d, np.asarray(per_prompt).T, strict=True)]


def test_gold_at_interpolates_each_prompt_by_hand():
    c = curve(_rows([1.0, 0.0, 2.0], [[3.0, 1.0, 5.0], [0.0, 0.0, -2.0]]))  # rows out of order: sorted by d
    assert list(c[0]) == [0.0, 1.0, 2.0]
    assert gold_at(c, 0.5).tolist() == [2.0, 0.0] and gold_at(c, 1.5).tolist() == [4.0, -1.0]
    with pytest.raises(GoodhartError, match="outside the run's range"):
        gold_at(c, 2.5)
    assert common_d(c, curve(_rows([0.0, 1.2], [[0, 1], [0, 1]]))) == 1.2


def test_kl_to_reach_on_a_hand_curve():
    bon = (np.array([0.0, 1.0, 2.0]), np.array([[0.0, 1.0, 3.0], [0.0, 1.0, 1.0]]))  # mean gold 0, 1, 2
    assert kl_to_reach(bon, 1.5) == pytest.approx(1.5 ** 2)  # halfway between d = 1 and 2
    assert kl_to_reach(bon, 2.5) is None
    policy = (np.array([0.0, 3.0]), np.array([[0.0, 2.0], [0.0, 1.0]]))  # final gold 1.5 at KL 9
    e = extra_kl(policy, 9.0, bon, n_boot=200)
    assert e["diff"] == pytest.approx(9.0 - 2.25) and e["diff_lo"] <= e["diff"] <= e["diff_hi"]


def test_matched_interval_covers_a_known_difference():
    """Two runs on P = 16 prompts whose true gold differs by 0.3 at every d, with prompt effects shared (as
    on the same prompts) and independent noise: the 95% paired interval covers 0.3 in ≥ 90% of 200 worlds."""
    rng = np.random.default_rng(0)
    d = np.array([0.0, 0.5, 1.0, 1.5])
    hits = 0
    for _ in range(200):
        prompt = rng.normal(0, 1, size=(16, 1))
        a = prompt + d + 0.3 + rng.normal(0, 0.3, size=(16, 4))
        b = prompt + d + rng.normal(0, 0.3, size=(16, 4))
        r = matched(curve(_rows(d, a)), curve(_rows(d, b)), 1.25, n_boot=400, seed=int(rng.integers(1 << 30)))
        hits += r["diff_lo"] <= 0.3 <= r["diff_hi"]
    assert hits / 200 >= 0.9


def test_grid_wall_time_spans_overlapping_runs_from_their_files(tmp_path):
    import os

    from goodhart.report.pareto_tables import grid_wall_s, run_wall_s

    def run(name, start, end):  # config.yaml written at start, the final weights at the end (epoch seconds)
        d = tmp_path / name
        (d / "policy").mkdir(parents=True)
        (d / "config.yaml").write_text("x: 1\n")
        (d / "policy" / "model.safetensors").write_bytes(b"")
        os.utime(d / "config.yaml", (start, start))
        os.utime(d / "policy" / "model.safetensors", (end, end))
        return d

    a, b, c = run("a", 1000, 1600), run("b", 1000, 1700), run("c", 1600, 2200)  # two at a time, then c
    assert run_wall_s(a) == 600 and run_wall_s(c) == 600
    assert grid_wall_s([a, b, c]) == 1200  # not the 1,900 s the runs sum to
    (c / "policy" / "model.safetensors").unlink()  # an unfinished run: no grid time
    assert grid_wall_s([a, b, c]) is None and grid_wall_s([]) is None
