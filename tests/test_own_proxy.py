"""Bring your own RM: checkpoints used as the proxy as they are, with their own tokenizer and chat template."""

import json

import numpy as np
import pytest

from goodhart.reward.load import load_reward_model
from goodhart.worlds.smoke import make_proxy

from helpers import goodhart

TEMPLATE = "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"


@pytest.fixture(scope="module")
def own_rms(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    for seed in (1, 2):
        model, tok = make_proxy(seed)
        tok.chat_template = TEMPLATE
        model.save_pretrained(root / f"rm{seed}")
        tok.save_pretrained(root / f"rm{seed}")
    return root


def test_run_with_own_proxy_ensemble(own_rms, tmp_path):
    out = tmp_path / "run"
    res = goodhart("run", "--world", "smoke", "--out", str(out),
                   "--set", f"proxy=[{own_rms / 'rm1'}, {own_rms / 'rm2'}]", "--set", "proxy_format=chat")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in open(out / "results.jsonl")]
    assert rows[0]["rm_backbone"] == "ensemble" and rows[0]["rm_pairs"] == 0 and 0 <= rows[0]["rm_val_acc"] <= 1
    assert not (out / "proxy_rm").exists()  # nothing was trained
    samples = [json.loads(line) for line in open(out / "samples.jsonl")]
    assert {s["split"] for s in samples} == {"eval"}


def test_chat_template_changes_what_the_rm_reads(own_rms):
    prompts, comps = ["the film was"] * 3, ["good fun", "bad", "nice nice"]
    rm = load_reward_model(own_rms / "rm1")
    rm.proxy_format = "pair"
    plain = rm.score(prompts, comps)
    rm.proxy_format = "chat"
    chat = rm.score(prompts, comps)
    assert not np.allclose(plain, chat)
    rm.proxy_format = "auto"
    assert np.allclose(rm.score(prompts, comps), chat)  # no recorded convention + a template: auto uses it
