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


def test_run_trains_a_family_of_proxies_on_nested_data(smoke_run):
    """family_pairs [128, 512] plus the main proxy: three curves with their data sizes, each saved, each
    RM's training logged under its name, each pool score in samples.jsonl; more data, higher accuracy
    is not asserted (a property of the world), the sizes and files are."""
    rows = [json.loads(line) for line in open(smoke_run / "results.jsonl")]
    pairs = {r["reward_model"]: r["rm_pairs"] for r in rows if r["reward_model"] != "gold"}
    assert pairs["proxy_128"] == 128 and pairs["proxy_512"] == 512 and pairs["proxy"] > 512
    for name in ("proxy_rm_128", "proxy_rm_512", "proxy_rm"):
        assert (smoke_run / name / "model.safetensors").is_file(), name
    steps = [json.loads(line) for line in open(smoke_run / "metrics.jsonl")]
    assert {m.get("proxy") for m in steps if "loss/bt" in m} == {"proxy_128", "proxy_512", "proxy"}
    evals = [r for r in (json.loads(line) for line in open(smoke_run / "samples.jsonl")) if r["split"] == "eval"]
    assert {"proxy", "proxy_128", "proxy_512"} <= set(evals[0])
    assert not np.allclose([r["proxy_128"] for r in evals[:50]], [r["proxy"] for r in evals[:50]])
    for name in pairs:  # every curve carries its peak and, with 4 prompts and bootstrap, the paired fall
        curve = [r for r in rows if r["reward_model"] == name]
        assert curve[0]["peak_n"] == max(curve, key=lambda r: r["gold"])["n"]
        assert curve[0]["fall_lo"] <= curve[0]["fall"] <= curve[0]["fall_hi"]


def test_run_prints_one_sentence_per_proxy_and_a_table(tmp_path):
    res = goodhart("run", "--world", "smoke", "--out", str(tmp_path / "r"), *SMALL)
    assert res.returncode == 0, res.stderr
    for name in ("proxy_128 (128 comparisons", "proxy_512 (512 comparisons", "proxy ("):
        line = next(x for x in res.stdout.splitlines() if x.startswith(name))
        assert ("still rising at n = 64" in line) or ("peaks at n = " in line and "paired fall" in line), line
    assert any(x.split()[:1] == ["64"] for x in res.stdout.splitlines())  # the table's last row: n = N
    html = (tmp_path / "r" / "report.html").read_text()
    assert "proxy_128 (128 comparisons" in html


def test_curve_sentence_rule():
    """The stated rule on hand-made curves: peak at the largest n → still rising; a fall is claimed only
    with fall_lo > 0; otherwise 'includes 0'."""
    from goodhart.report.tables import curve_sentence

    def curve(golds, lo):
        return [{"n": n, "gold": g, "proxy": float(n), "rm_pairs": 10, "rm_val_acc": 0.6, "fall": 0.3,
                 "fall_lo": lo, "fall_hi": 0.5} for n, g in zip((1, 2, 4), golds, strict=True)]

    assert "still rising at n = 4" in curve_sentence("p", curve([0, 1, 2], 0.1))
    assert "overoptimization" in curve_sentence("p", curve([0, 2, 1], 0.1))
    assert "includes 0" in curve_sentence("p", curve([0, 2, 1], -0.1))


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
