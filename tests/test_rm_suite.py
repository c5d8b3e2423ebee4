"""`goodhart rm suite` on the smoke world: members, ENS mean / WCO / UWO, WARM, flipped and OOD checks."""

import json

import pytest

from helpers import goodhart


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite") / "s"
    res = goodhart("rm", "suite", "--world", "smoke", "--out", str(out), "--set", "members=4",
                   "--set", "warm_sizes=[2,4]", "--set", "data.eval_samples_per_prompt=32")
    assert res.returncode == 0, res.stderr
    return out


def test_suite_rows_accuracies_and_curves(suite):
    rows = [json.loads(line) for line in open(suite / "results.jsonl")]
    summary = {r["reward_model"]: r for r in rows if r["study"] == "rm_suite"}
    expected = {"member_0", "member_1", "member_2", "member_3", "ens_mean_M2", "wco_M2", "uwo_M2", "warm_M2",
                "ens_mean_M4", "wco_M4", "uwo_M4", "warm_M4"}
    assert set(summary) == expected
    for r in summary.values():
        assert 0 <= r["clean_acc"] <= 1 and 0 <= r["flipped_memorised"] <= 1 and 0 <= r["ood_acc"] <= 1
        assert r["label_noise"] == 0.25 and r["flipped_pairs"] == round(0.25 * r["train_pairs"])
        assert 1 <= r["bon_peak_n"] <= 32
    assert sum(r["clean_acc"] for r in summary.values()) / len(summary) > 0.55  # members learned despite ρ = 0.25
    bon = [r for r in rows if r["study"] == "bon"]
    assert {r["reward_model"] for r in bon} == expected
    # the gold curve of each aggregate starts at 0 (normalised pool) and is selected by that aggregate's score
    for name in expected:
        curve = sorted((r for r in bon if r["reward_model"] == name), key=lambda r: r["n"])
        assert curve[0]["gold"] == pytest.approx(0, abs=1e-9) and curve[-1]["proxy"] > curve[0]["proxy"]


def test_suite_table_and_report(suite):
    table = (suite / "table.md").read_text()
    assert "best single (member_" in table and "warm_M4" in table and "wco_M4" in table
    assert (suite / "plots" / "rm_accuracy.png").is_file() and (suite / "plots" / "bon.png").is_file()
    assert "Reward models: members, ensembles, WARM" in (suite / "report.html").read_text()
