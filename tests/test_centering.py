"""Reward centering at training time and normalisation constants stored in the checkpoint."""

import json

import numpy as np

from goodhart.reward.load import load_reward_model
from goodhart.runs import read_jsonl

from helpers import goodhart

FAST = ["--world", "smoke", "--set", "rm.epochs=3", "--set", "prompts=24"]


def test_centering_pulls_scores_to_zero_and_constants_are_stored(tmp_path):
    for name, coef in (("plain", 0.0), ("centred", 1.0)):
        res = goodhart("rm", "train", *FAST, "--set", f"rm.center_coef={coef}", "--out", str(tmp_path / name))
        assert res.returncode == 0, res.stderr
    pairs = [r for r in read_jsonl(tmp_path / "plain" / "pairs.jsonl") if r["split"] == "train"]
    prompts = [r["prompt"] for r in pairs] * 2
    texts = [r["chosen"] for r in pairs] + [r["rejected"] for r in pairs]
    means = {}
    for name in ("plain", "centred"):
        config = json.loads((tmp_path / name / "model" / "config.json").read_text())
        norm = config["goodhart_normalisation"]
        rm = load_reward_model(tmp_path / name)
        raw = rm.score(prompts, texts)
        assert np.isclose(raw.mean(), norm["shift"], atol=1e-4) and np.isclose(raw.std(), norm["scale"], rtol=1e-3)
        rm.normalise = True
        z = rm.score(prompts, texts)
        assert abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-3
        means[name] = abs(raw.mean())
    # seeded runs: plain |mean| ≈ 0.15, centred ≈ 1e-4; without centring the two would be equal
    assert means["centred"] < 0.1 * means["plain"]
    metrics = read_jsonl(tmp_path / "centred" / "metrics.jsonl")
    assert any("loss/center" in m for m in metrics)


def test_centering_loss_hand_value():
    import torch

    from goodhart.reward.bt import centering_loss

    # pairs (1, 2) and (−1, 0): ((1 + 2)² + (−1 + 0)²) / 2 = (9 + 1) / 2 = 5
    assert centering_loss(torch.tensor([1.0, -1.0]), torch.tensor([2.0, 0.0])).item() == 5.0
