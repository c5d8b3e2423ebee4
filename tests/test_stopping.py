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
