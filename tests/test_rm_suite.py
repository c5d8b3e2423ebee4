"""`goodhart rm suite` on the smoke world with 2 seeds × 2 label-noise levels: members, ENS mean / WCO /
UWO, WARM, independent members, flipped and OOD checks, pooled tables, McNemar tests, claims."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_one_line_error, goodhart

NAMES = {"member_0", "member_1", "member_2", "member_3", "ens_mean_M2", "wco_M2", "uwo_M2", "warm_M2",
         "ens_mean_M4", "wco_M4", "uwo_M4", "warm_M4", "indep_0", "indep_1", "ens_indep_M2", "warm_indep_M2"}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite") / "s"
    res = goodhart("rm", "suite", "--world", "smoke", "--out", str(out), "--set", "members=4",
                   "--set", "warm_sizes=[2,4]", "--set", "data.eval_samples_per_prompt=32", "--set", "seeds=[0,1]",
                   "--set", "noise_levels=[0,0.25]", "--set", "bon.bootstrap=50")
    assert res.returncode == 0, res.stderr
    return out


def _rows(suite, study):
    return [r for r in map(json.loads, open(suite / "results.jsonl")) if r.get("study") == study]


def test_suite_rows_for_every_seed_and_noise_level(suite):
    rows = _rows(suite, "rm_suite")
    reps = {(r["label_noise"], r["seed"]) for r in rows}
    assert reps == {(0.0, 0), (0.0, 1), (0.25, 0), (0.25, 1)}
    for rep in reps:
        summary = {r["reward_model"]: r for r in rows if (r["label_noise"], r["seed"]) == rep}
        assert set(summary) == NAMES
        for r in summary.values():
            assert 0 <= r["clean_acc"] <= 1 and 0 <= r["ood_acc"] <= 1 and 1 <= r["bon_peak_n"] <= 32
            assert r["flipped_pairs"] == round(rep[0] * r["train_pairs"])
            assert (r["flipped_memorised"] is None) == (rep[0] == 0)
            assert r["bon_peak_gold_lo"] <= r["bon_peak_gold"] <= r["bon_peak_gold_hi"]
    assert np.mean([r["clean_acc"] for r in rows]) > 0.55  # members learned, even at ρ = 0.25
    # seeds give different comparisons and members: the same member's curve differs between seeds
    curve = {s: [r["gold"] for r in _rows(suite, "bon") if r["reward_model"] == "member_0" and r["seed"] == s
                 and r["label_noise"] == 0.25] for s in (0, 1)}
    assert len(curve[0]) == len(curve[1]) and curve[0] != curve[1]
    first = sorted((r for r in _rows(suite, "bon") if r["reward_model"] == "warm_M4" and r["seed"] == 0
                    and r["label_noise"] == 0.25), key=lambda r: r["n"])
    assert first[0]["gold"] == pytest.approx(0, abs=1e-9) and first[-1]["proxy"] > first[0]["proxy"]


def test_pooled_table_aggregates_the_seeds(suite):
    from goodhart.report.suite_tables import pooled_suite, pooled_tests

    rows = [json.loads(line) for line in open(suite / "results.jsonl")]
    pooled = pooled_suite(rows)
    warm = next(r for r in pooled[0.25] if r["reward_model"] == "warm_M4")
    seeds = [r["clean_acc"] for r in _rows(suite, "rm_suite") if r["reward_model"] == "warm_M4"
             and r["label_noise"] == 0.25]
    assert warm["seeds"] == 2 and warm["clean_acc"][0] == pytest.approx(np.mean(seeds))
    assert warm["clean_acc"][1] <= warm["clean_acc"][0] <= warm["clean_acc"][2]
    names = [r["reward_model"] for r in pooled[0.0]]
    assert names[:2] == ["average member", "best single"] and "member_0" not in names
    per_seed = [r for r in _rows(suite, "rm_suite_test") if r["set"] == "flip" and r["a"] == "warm_M4"
                and r["b"] == "ens_mean_M4"]
    flip = next(t for t in pooled_tests(rows) if t["set"] == "flip" and t["a"] == "warm_M4" and t["b"] == "ens_mean_M4")
    assert len(per_seed) == 2 and flip["only_a"] == sum(r["only_a"] for r in per_seed)
    assert flip["pairs"] == sum(r["pairs"] for r in per_seed) and 0 < flip["p"] <= 1
    assert not [t for t in pooled_tests(rows) if t["set"] == "flip" and t["label_noise"] == 0]  # no flips at ρ = 0
    table = (suite / "table.md").read_text()
    assert "### Label noise ρ = 0.25 (2 seeds)" in table and "| best single |" in table
    assert "McNemar" in table and "warm_M4 − ens_mean_M4" in table and "| average member |" in table


def test_suite_report(suite):
    assert (suite / "plots" / "rm_accuracy.png").is_file() and (suite / "plots" / "bon.png").is_file()
    html = (suite / "report.html").read_text()
    assert "Reward models: members, ensembles, WARM" in html and "Label noise ρ = 0.25" in html


def test_claims_on_a_suite_give_every_row_a_verdict(suite):
    res = goodhart("claims", str(suite))
    assert res.returncode == 0, res.stderr
    lines = [line for line in (suite / "claims.md").read_text().splitlines() if line.startswith("| ")][1:]
    claims = {line.split(" | ")[0][2:]: line for line in lines}
    assert "WARM memorises fewer flipped labels than ENS (ρ = 0.25)" in claims
    assert "WARM memorises fewer flipped labels than ENS (ρ = 0)" not in claims  # nothing is flipped at ρ = 0
    assert {"WARM of unrelated members fails (vs their ENS) (ρ = 0)", "WCO overoptimises less than the ENS mean (ρ = 0)",
            "WARM's Best-of-n gold ≥ ENS's (ρ = 0.25)", "ENS better on clean labels than WARM (ρ = 0)"} <= set(claims)
    assert all(any(f"**{v}**" in line for v in ("reproduced", "contradicted", "inconclusive", "not reached"))
               for line in lines)
    # only an overoptimisation row can be `not reached`; a level's row says how many seeds passed the ENS mean's
    # peak, the claim's Holm row at how many levels its regime was reached
    for line in lines:
        assert "**not reached**" not in line or "overoptimises less" in line and (
            "peak passed in" in line or "reached at none of its 2 noise levels" in line), line
    assert "McNemar p" in claims["WARM better OOD than ENS (ρ = 0.25)"]


DOC_SCRIPT = Path(__file__).parents[1] / "scripts" / "build_study_doc.py"


def test_suite_doc_is_generated_from_the_suite_dir(suite, tmp_path):
    """docs/rm_suite.md's generated part: setup from the run's config, the claims rows of `goodhart claims`,
    the pooled tables, three PNGs; regenerating replaces it."""
    page, img = tmp_path / "rm_suite.md", tmp_path / "img"
    page.write_text("# RM suite\n\nhand-written\n")
    cmd = [sys.executable, str(DOC_SCRIPT), str(suite), "--page", str(page), "--img", str(img), "--prefix", "rs"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    text = page.read_text()
    assert text.startswith("# RM suite\n\nhand-written")
    assert "- world `smoke`; seeds 0, 1" in text and "ρ 0.25: " in text and "4 prompts × 32 samples" in text
    assert goodhart("claims", str(suite)).returncode == 0
    claims = [line for line in (suite / "claims.md").read_text().splitlines() if line.startswith("| ")]
    assert len(claims) >= 12 and all(line in text for line in claims)
    assert "### Label noise ρ = 0.25 (2 seeds)" in text and "| warm_M4 | " in text and "McNemar" in text
    for name in ("rs_accuracy.png", "rs_bon.png", "rs_curves.png"):
        assert f"](img/{name})" in text and (img / name).read_bytes()[:4] == b"\x89PNG"
        assert (img / name).stat().st_size < 300_000
    assert "rho0.25-s1" in text.split("## Time")[1]
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0 and page.read_text() == text


def test_bad_suite_settings_are_one_line(tmp_path):
    res = goodhart("rm", "suite", "--world", "smoke", "--out", str(tmp_path / "x"), "--set", "noise_levels=[0.6]")
    assert_one_line_error(res, "noise_levels must lie in [0, 0.5)")
    res = goodhart("rm", "suite", "--world", "smoke", "--out", str(tmp_path / "x"), "--set", "independent=1")
    assert_one_line_error(res, "independent must be 0")
    assert not (tmp_path / "x").exists()


def test_suite_resume_reruns_only_the_unfinished_replicate(suite):
    """A kill inside the last replicate (its done row never written, a torn line after it): --resume keeps
    the finished replicates' rows as they were and runs only that one again; a changed setting is refused."""
    lines = open(suite / "results.jsonl").read().splitlines()
    last = json.loads(lines[-1])
    assert last["study"] == "rm_suite_done" and last["replicate"] == "rho0.25-s1"
    kept = [line for line in lines if json.loads(line).get("replicate") != "rho0.25-s1"]
    partial = [line for line in lines[:-1] if json.loads(line).get("replicate") == "rho0.25-s1"][:5]
    (suite / "results.jsonl").write_text("\n".join(kept + partial) + '\n{"study": "bon", "torn')
    args = ["rm", "suite", "--world", "smoke", "--out", str(suite), "--set", "members=4", "--set", "warm_sizes=[2,4]",
            "--set", "data.eval_samples_per_prompt=32", "--set", "seeds=[0,1]", "--set", "noise_levels=[0,0.25]",
            "--set", "bon.bootstrap=50"]
    assert_one_line_error(goodhart(*args, "--resume", "--set", "members=3", "--set", "warm_sizes=[2,3]"),
                          "differs in members")
    res = goodhart(*args, "--resume")
    assert res.returncode == 0, res.stderr
    after = open(suite / "results.jsonl").read().splitlines()
    assert after[: len(kept)] == kept  # finished replicates untouched
    redone = [json.loads(line) for line in after[len(kept):]]
    assert {r["replicate"] for r in redone} == {"rho0.25-s1"} and redone[-1]["study"] == "rm_suite_done"
    assert sum(r["study"] == "rm_suite" for r in redone) == len(NAMES)  # no duplicate rows
    assert "replicate ρ = 0.25, seed 1" in res.stderr and "seed 0:" not in res.stderr


def test_mcnemar_verdict_rule_by_hand():
    from goodhart.report.verdicts import mcnemar_verdict

    assert mcnemar_verdict({"p": 0.01, "only_a": 20, "only_b": 5}) == "reproduced"
    assert mcnemar_verdict({"p": 0.01, "only_a": 20, "only_b": 5}, a_wins=False) == "contradicted"
    assert mcnemar_verdict({"p": 0.2, "only_a": 9, "only_b": 5}) == "inconclusive"
