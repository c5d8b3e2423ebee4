"""`goodhart stopping`: the rules on synthetic signals and the whole table on the smoke world."""

import numpy as np
import pytest

from goodhart import kl_bound
from goodhart.commands.stopping import alarm_n, fixed_kl_n
from goodhart.runs import read_jsonl

from helpers import goodhart


def test_alarm_and_fixed_kl_rules():
    ns = np.arange(1, 11)
    signal = np.array([1.0, 1.1, 1.2, 1.4, 1.6, 2.0, 2.5, 3, 3, 3])
    assert alarm_n(ns, signal, 1.5) == 4  # 1.6 at n = 5 crosses 1.5 × 1.0: stop one before
    assert alarm_n(ns, np.ones(10), 1.5) == 10
    assert fixed_kl_n(ns, 1.0) == max(n for n in ns if kl_bound(n) <= 1.0)


def test_stopping_table_on_smoke(tmp_path):
    out = tmp_path / "stop"
    res = goodhart("stopping", "--world", "smoke", "--out", str(out), "--set", "data.eval_prompts=6",
                   "--set", "members=2")
    assert res.returncode == 0, res.stderr
    everything = read_jsonl(out / "results.jsonl")
    rows = [r for r in everything if r["study"] == "stopping"]
    rules = [r["rule"] for r in rows]
    assert rules == ["largest n", "recommend (hedged)", "soft BoN, best λ", "alarm: disagreement",
                     "alarm: mean − min gap", "fixed KL budget", "true gold optimum"]
    oracle = rows[-1]
    assert oracle["gold_below_peak"] == 0 and all(r["gold_below_peak"] >= -1e-9 for r in rows if r["n"] is not None)
    assert rows[0]["n"] == 64 and rows[0]["kl"] == pytest.approx(kl_bound(64))
    assert "| rule |" in (out / "table.md").read_text()
    soft = [r for r in everything if r["study"] == "frontier" and r["method"] == "soft_bon"]
    kls = [r["kl"] for r in sorted(soft, key=lambda r: r["lam"])]
    assert all(a >= b - 1e-9 for a, b in zip(kls, kls[1:], strict=False))  # KL falls as λ grows
    assert (out / "plots" / "soft_vs_hard.png").is_file()


@pytest.mark.parametrize("command", ["stopping", "study", "rm suite"])
def test_rm_training_settings_reach_every_command(tmp_path, command):
    """rm.center_coef (and precision, passed the same way: RMTraining.of) are honoured by stopping, study
    and rm suite, not only by run and rm train: the centring term shows up in their training metrics."""
    from goodhart.commands.rm_suite import run_rm_suite
    from goodhart.commands.stopping import run_stopping
    from goodhart.commands.study import run_study
    from goodhart.config import load_rm_suite_config, load_stopping_config, load_study_config
    from goodhart.runs import read_jsonl

    small = ["data.eval_prompts=4", "data.eval_samples_per_prompt=8", "rm.center_coef=0.5", "rm.epochs=1"]
    load, run = {"stopping": (load_stopping_config, run_stopping), "study": (load_study_config, run_study),
                 "rm suite": (load_rm_suite_config, run_rm_suite)}[command]
    extra = {"study": ["grid.data_sizes=[48]", "grid.rm_sizes={xs: {layers: 1, hidden: 32}}", "bon.bootstrap=0"],
             "rm suite": ["members=2", "warm_sizes=[2]", "member_epochs=1"], "stopping": ["members=2"]}[command]
    run(load(world="smoke", overrides=small + extra), tmp_path / "out")
    metrics = read_jsonl(tmp_path / "out" / "metrics.jsonl")
    assert any("loss/center" in m for m in metrics)
