"""The `goodhart` CLI end to end on the smoke world, and its one-line errors (exit 2)."""

import json
import os

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


def _rl_points(fall: float, steps=(0, 10, 20, 30), prompts: int = 16, seed: int = 0) -> list[dict]:
    """Evaluation rows of a policy run whose per-prompt gold rises to step 10 and then drops by `fall`
    (plus prompt noise of sd 0.3): what leg_rows reads from a `policy train` run's results."""
    rng = np.random.default_rng(seed)
    truth = np.array([0.0, 0.5, 0.5 - fall / 2, 0.5 - fall])
    per_prompt = truth + 0.3 * rng.standard_normal((prompts, len(steps)))
    return [{"step": s, "d": float(i), "kl": float(i * i), "gold": float(per_prompt[:, i].mean()),
             "gold_lo": None, "proxy": float(i), "gold_prompts": per_prompt[:, i].tolist(), "study": "policy",
             "method": "rloo", "beta_kl": 0.0} for i, s in enumerate(steps)]


def test_rl_leg_rows_claim_a_fall_only_when_the_split_half_interval_is_above_zero():
    """The RL leg's rule is Best-of-n's: a true fall of 1.5 sd over 16 prompts is claimed with its interval
    above 0 (and its point near 1.5); a flat-after-the-peak curve is not; a curve still rising is named so."""
    from goodhart.commands.run_rl import leg_rows
    from goodhart.report.tables import rl_sentence

    stats = {"rm/train_pairs": 64, "rm/val_accuracy": 0.6}
    falls = leg_rows(_rl_points(1.5), "proxy_64", stats, 400, 0)
    assert {r["study"] for r in falls} == {"rl"} and {r["reward_model"] for r in falls} == {"proxy_64"}
    assert falls[-1]["fall_lo"] > 0 and 1.0 < falls[-1]["fall"] < 2.0 and falls[-1]["peak_step"] == 10
    assert "overoptimization" in rl_sentence("proxy_64", falls) and "RLOO against proxy_64 (64" in rl_sentence(
        "proxy_64", falls)
    flat = leg_rows(_rl_points(0.0, seed=1), "proxy", stats, 400, 0)
    assert flat[-1]["fall_lo"] < 0 < flat[-1]["fall_hi"]
    rising = [r | {"gold": float(r["step"])} for r in flat]
    assert "still rising at step 30" in rl_sentence("proxy", rising)


def test_run_plot_with_an_rl_leg_has_two_panels_and_no_overlapping_text():
    from goodhart.commands.run_rl import leg_rows
    from goodhart.report.plots import plot_bon
    from test_plots import _overlap, _rows

    stats = {"rm/train_pairs": 64, "rm/val_accuracy": 0.6}
    rl = leg_rows(_rl_points(1.5), "proxy_64", stats, 100, 0) + leg_rows(_rl_points(0.0), "proxy", stats, 100, 0)
    fig = plot_bon(_rows(), rl)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()]
    clashes = [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if _overlap(ba, bb)]
    assert not clashes, clashes[:5]
    panels = [a for a in fig.axes if a.get_legend() is not None]
    assert len(panels) == 2
    for a in panels:
        assert not _overlap(a.get_legend().get_window_extent(renderer), a.get_window_extent(renderer))
    labels = [t.get_text() for t in panels[1].get_legend().get_texts()]
    assert any("peak step 10" in s for s in labels), labels


def _untimed(path):
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")} for line in open(path)]


def test_run_reuses_cached_proxies_and_writes_the_same_files(tmp_path):
    """A second run with the same settings takes its proxies from the cache (it says so) and writes the same
    checkpoints, training log, results and samples as the run that trained them."""
    env = dict(os.environ, GOODHART_CACHE=str(tmp_path / "cache"))
    first, second = tmp_path / "a", tmp_path / "b"
    logs = []
    for out in (first, second):
        res = goodhart("run", "--world", "smoke", "--out", str(out), *SMALL, env=env)
        assert res.returncode == 0, res.stderr
        logs.append(" ".join(res.stderr.split()))  # rich may wrap a long line
    assert "from the cache" not in logs[0] and logs[1].count("from the cache") == 3, logs[1]
    for name in ("proxy_rm_128", "proxy_rm_512", "proxy_rm"):
        assert (first / name / "model.safetensors").read_bytes() == (second / name / "model.safetensors").read_bytes()
    for name in ("metrics.jsonl", "results.jsonl", "samples.jsonl"):
        assert _untimed(first / name) == _untimed(second / name), name
    assert any("loss/bt" in m for m in _untimed(second / "metrics.jsonl"))  # the replayed training log


def test_proxy_cache_key_changes_with_what_the_proxy_learns_from():
    """The cache key moves with the training data, rm settings, seed and subset size (and not otherwise)."""
    from types import SimpleNamespace

    from goodhart.commands.proxy_cache import data_digest, proxy_key
    from goodhart.config import RMTraining, load_run_config

    cfg = load_run_config(world="smoke")
    world = SimpleNamespace(name="smoke", policy_id="p", proxy_name="x", gold_name="g")
    comps, gold = np.array([["a", "b"]]), np.array([[0.0, 1.0]])
    data = data_digest(["q"], comps, gold)
    base = proxy_key(world, cfg, RMTraining.of(cfg), data, 64)
    assert base == proxy_key(world, cfg, RMTraining.of(cfg), data_digest(["q"], comps, gold), 64)
    lr = load_run_config(world="smoke", overrides=["rm.lr=1.0e-4"])
    seed = load_run_config(world="smoke", overrides=["seed=3"])
    assert len({base, proxy_key(world, lr, RMTraining.of(lr), data, 64),
                proxy_key(world, seed, RMTraining.of(seed), data, 64),
                proxy_key(world, cfg, RMTraining.of(cfg), data_digest(["q"], comps, gold + 1), 64),
                proxy_key(world, cfg, RMTraining.of(cfg), data_digest(["q"], np.array([["a", "c"]]), gold), 64),
                proxy_key(world, cfg, RMTraining.of(cfg), data, 128)}) == 6
