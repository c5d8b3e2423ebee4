"""The `hf` world from local checkpoints saved in a tmp dir (offline), with both kinds of gold reward."""

import json
import os
import subprocess
import sys

import pytest

from goodhart import GoodhartError, load_run_config, load_world
from goodhart.worlds.smoke import save_smoke_models

SIZES = ["data.train_prompts=16", "data.eval_prompts=2", "data.eval_samples_per_prompt=16",
         "sampling.max_new_tokens=8", "rm.epochs=1", "rm.max_length=32", "rm.lr=1e-3", "bon.bootstrap=20"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return save_smoke_models(tmp_path_factory.mktemp("models"))


def _overrides(saved, gold):
    return [f"hf.policy={saved['policy']}", f"hf.prompts={saved['prompts']}", f"hf.gold={gold}",
            f"hf.proxy_backbone={saved['proxy_backbone']}", *SIZES]


@pytest.mark.parametrize("gold", ["goodhart.worlds.smoke:gold", "checkpoint"])
def test_hf_world_runs_end_to_end(saved, tmp_path, gold):
    gold = saved["proxy_backbone"] if gold == "checkpoint" else gold  # any seq-classification dir can be gold
    args = [a for o in _overrides(saved, gold) for a in ("--set", o)]
    res = subprocess.run([sys.executable, "-m", "goodhart.cli", "run", "--world", "hf", "--out", str(tmp_path / "r"),
                          *args], capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=300)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in open(tmp_path / "r" / "results.jsonl")]
    assert rows[0]["world"] == "hf" and rows[0]["gold_reward"] == gold
    assert max(r["n"] for r in rows) == 16


def test_hf_world_errors(saved, tmp_path):
    cfg = load_run_config(world="hf", overrides=_overrides(saved, "goodhart.worlds.smoke:nothing"))
    with pytest.raises(GoodhartError, match="has no function 'nothing'"):
        load_world(cfg)
    cfg = load_run_config(world="hf", overrides=[*_overrides(saved, "goodhart.worlds.smoke:gold"),
                                                 f"hf.policy={tmp_path}"])
    with pytest.raises(GoodhartError, match="could not load the policy tokenizer"):
        load_world(cfg)
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"prompt": "  "}\n{"text": "x"}\n')
    cfg = load_run_config(world="hf", overrides=[*_overrides(saved, "goodhart.worlds.smoke:gold"), f"hf.prompts={empty}"])
    with pytest.raises(GoodhartError, match="empty.jsonl:2: expected an object with a 'prompt' field"):
        load_world(cfg)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{oops\n')
    cfg = load_run_config(world="hf", overrides=[*_overrides(saved, "goodhart.worlds.smoke:gold"), f"hf.prompts={bad}"])
    with pytest.raises(GoodhartError, match="bad.jsonl:2: not valid JSON"):
        load_world(cfg)


def test_gold_nan_rows_are_named(saved):
    cfg = load_run_config(world="hf", overrides=_overrides(saved, "goodhart.worlds.smoke:gold"))
    world = load_world(cfg)
    world.gold = lambda pairs: [0.0, float("nan"), 1.0]
    with pytest.raises(GoodhartError, match="NaN/inf for rows 1"):
        world.gold_scores(["a", "b", "c"], ["x", "y", "z"])
