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


def test_each_rm_is_scored_the_way_it_was_trained(tmp_path):
    """goodhart's RMs record `goodhart_format: pair`; a trl RewardTrainer checkpoint (its training_args.bin)
    is read as prompt + completion + eos in one sequence, as trl trained it; proxy_format forces either."""
    import torch

    from goodhart.config import RMTraining
    from goodhart.reward.train import Comparisons, train_reward_model
    from goodhart.scoring import encode_pairs

    model, tok = make_proxy(0)
    data = Comparisons(["a", "b", "c", "d"], ["good fun", "great", "nice", "fine"], ["bad", "dull", "awful", "meh"])
    train_reward_model(model, tok, data, RMTraining(lr=1e-3, epochs=1, batch_size=4, max_length=32))
    assert model.config.goodhart_format == "pair"
    tok.eos_token = tok.sep_token  # what trl's RewardTrainer needs (and saves) for a BERT-style tokenizer
    for name in ("ours", "trl"):
        model.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    (tmp_path / "trl" / "training_args.bin").write_bytes(b"trl TrainingArguments (never loaded)")
    cfg = json.loads((tmp_path / "trl" / "config.json").read_text())
    cfg.pop("goodhart_format")  # trl writes no goodhart convention
    (tmp_path / "trl" / "config.json").write_text(json.dumps(cfg))

    prompts, comps = ["the film was"] * 3, [" good fun", " bad", " nice nice"]
    enc = encode_pairs(tok, prompts, comps, 32, fmt="concat")
    plain = tok([p + c + tok.eos_token for p, c in zip(prompts, comps, strict=True)], padding=True, return_tensors="pt")
    assert torch.equal(enc["input_ids"], plain["input_ids"])  # exactly trl's text: prompt + completion + eos
    ours, trl = load_reward_model(tmp_path / "ours"), load_reward_model(tmp_path / "trl")
    assert ours.member_format(*ours.members[0]) == "pair" and trl.member_format(*trl.members[0]) == "concat"
    auto = trl.score(prompts, comps)
    trl.proxy_format = "pair"
    assert not np.allclose(auto, trl.score(prompts, comps))  # the convention changes what the RM reads
    trl.proxy_format = "concat"
    assert np.allclose(auto, trl.score(prompts, comps))
    recorded = ours.score(prompts, comps)  # auto on goodhart's own checkpoint: its recorded pair format
    ours.proxy_format = "pair"
    assert np.allclose(recorded, ours.score(prompts, comps))
