"""The `goodhart` CLI end to end on the smoke world, and its one-line errors (exit 2)."""

import json

import numpy as np
import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from goodhart.scoring import score_pairs

from helpers import assert_one_line_error, goodhart

SMALL = ["--set", "bon.bootstrap=50"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "smoke"
    res = goodhart("run", "--world", "smoke", "--out", str(out), *SMALL)
    assert res.returncode == 0, res.stderr
    return out


def test_run_writes_the_run_directory(smoke_run):
    for name in ("config.yaml", "metrics.jsonl", "results.jsonl", "samples.jsonl", "report.html",
                 "plots/bon.png", "plots/bon.svg", "proxy_rm/model.safetensors", "proxy_rm/config.json"):
        assert (smoke_run / name).is_file(), name
    assert not [p for p in smoke_run.iterdir() if p.name.startswith(".")]  # no temp files left
    rows = [json.loads(line) for line in open(smoke_run / "results.jsonl")]
    proxy_rows = [r for r in rows if r["reward_model"] == "proxy"]
    assert [r["n"] for r in proxy_rows] == list(range(1, 65))
    for r in proxy_rows:
        assert {"method", "n", "kl", "gold", "proxy", "reward_model", "d"} <= set(r)
        assert r["kl"] == pytest.approx(np.log(r["n"]) - (r["n"] - 1) / r["n"])
        assert r["gold_lo"] <= r["gold"] + 1e-9 and r["gold"] <= r["gold_hi"] + 1e-9
    # normalised to 0 at n = 1; selecting by the proxy raises the proxy score
    assert proxy_rows[0]["gold"] == pytest.approx(0, abs=1e-9) and proxy_rows[0]["proxy"] == pytest.approx(0, abs=1e-9)
    assert proxy_rows[-1]["proxy"] > proxy_rows[7]["proxy"] > 0.3
    oracle = [r for r in rows if r["reward_model"] == "gold"]
    assert oracle[-1]["gold"] >= max(r["gold"] for r in proxy_rows)  # gold selection is the ceiling
    summary = [json.loads(line) for line in open(smoke_run / "metrics.jsonl")][-1]
    assert summary["phase"] == "summary" and summary["rm/val_accuracy"] > 0.5


def test_saved_proxy_reproduces_pool_scores(smoke_run):
    model = AutoModelForSequenceClassification.from_pretrained(smoke_run / "proxy_rm")
    tok = AutoTokenizer.from_pretrained(smoke_run / "proxy_rm")
    rows = [json.loads(line) for line in open(smoke_run / "samples.jsonl")]
    evals = [r for r in rows if r["split"] == "eval"][:20]
    scores = score_pairs(model, tok, [r["prompt"] for r in evals], [r["completion"] for r in evals], max_length=32)
    np.testing.assert_allclose(scores, [r["proxy"] for r in evals], atol=1e-4)


def test_report_rebuilds_from_results_alone(smoke_run, tmp_path):
    only = tmp_path / "only_results"
    only.mkdir()
    (only / "results.jsonl").write_text((smoke_run / "results.jsonl").read_text())
    res = goodhart("report", str(only))
    assert res.returncode == 0, res.stderr
    assert (only / "report.html").is_file() and (only / "plots" / "bon.png").is_file()
    assert "gold peak" in (only / "report.html").read_text()


def test_same_seed_same_results(smoke_run, tmp_path):
    res = goodhart("run", "--world", "smoke", "--out", str(tmp_path / "again"), *SMALL, "--set", "cache=false")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "again" / "results.jsonl").read_text() == (smoke_run / "results.jsonl").read_text()


def test_bad_config_key(tmp_path):
    out = tmp_path / "never"
    assert_one_line_error(goodhart("run", "--world", "smoke", "--set", "rm.lrr=1", "--out", str(out)),
                           "unknown key 'rm.lrr'")
    assert not out.exists()


def test_bad_key_in_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("world: smoke\nsampling:\n  temprature: 0.5\n")
    assert_one_line_error(goodhart("run", "--config", str(cfg), "--out", str(tmp_path / "x")),
                           "unknown key 'sampling.temprature'")


def test_n_below_one(tmp_path):
    assert_one_line_error(goodhart("run", "--world", "smoke", "--set", "bon.ns=[0,2]", "--out", str(tmp_path / "x")),
                           "n >= 1")


def test_missing_prompts_file(tmp_path):
    out = tmp_path / "x"
    res = goodhart("run", "--world", "hf", "--out", str(out), "--set", f"hf.prompts={tmp_path}/nope.jsonl",
                   "--set", "hf.policy=p", "--set", "hf.gold=goodhart.worlds.smoke:gold", "--set", "hf.proxy_backbone=b")
    assert_one_line_error(res, "nope.jsonl does not exist")
    assert not out.exists()


def test_refuses_to_overwrite_an_existing_run(smoke_run):
    before = (smoke_run / "results.jsonl").read_text()
    assert_one_line_error(goodhart("run", "--world", "smoke", "--out", str(smoke_run)), "already holds a run")
    assert (smoke_run / "results.jsonl").read_text() == before


def test_report_on_a_directory_without_results(tmp_path):
    assert_one_line_error(goodhart("report", str(tmp_path)), "no results.jsonl")


def test_help_shows_examples():
    res = goodhart("run", "--help")
    assert res.returncode == 0 and "Example: goodhart run" in res.stdout
