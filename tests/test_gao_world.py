"""The gao world's learned gold: its pieces on hand-made data and on the smoke world's tiny models (the
SmolLM2 build itself is measured in benchmarks/README.md and shown by goodhart doctor)."""

import json

import numpy as np
import pytest

from goodhart.config import SamplingConfig
from goodhart.worlds.gao import LearnedGold, all_pairs, build_gold, fit_bt_head, split_prompts


def test_all_pairs_orders_winners_and_drops_ties():
    labels = np.array([[0.5, 0.1, 0.5], [1.0, 2.0, 0.0]])
    got = {tuple(r) for r in all_pairs(labels)}
    assert got == {(0, 0, 1), (0, 2, 1), (1, 1, 0), (1, 0, 2), (1, 1, 2)}  # (0, 0, 2) is a tie


def test_bt_head_recovers_a_known_preference_direction():
    """Labels from a known linear score of 16-dimensional features: the fitted head ranks held-out
    prompts' pairs as the truth does (≥ 0.9) and points the same way (cosine ≥ 0.9)."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=16)
    feats = rng.normal(size=(60, 8, 16))
    labels = feats @ truth + 0.3 * rng.normal(size=(60, 8))
    w, mean, std = fit_bt_head(feats[:40], all_pairs(labels[:40]))
    held = all_pairs(labels[40:])
    score = ((feats[40:] - mean) / std) @ w
    assert np.mean(score[held[:, 0], held[:, 1]] > score[held[:, 0], held[:, 2]]) >= 0.9
    assert w @ (truth * std) / np.linalg.norm(w) / np.linalg.norm(truth * std) >= 0.9


def test_prompt_split_keeps_the_gold_prompts_apart():
    prompts = [f"p{i}" for i in range(305)]
    world, gold = split_prompts(prompts)
    assert len(gold) == 100 and not set(world) & set(gold) and world + gold == prompts


@pytest.fixture(scope="module")
def smoke():
    from goodhart.worlds.smoke import smoke_world

    return smoke_world(0)


def test_gold_built_on_smoke_models_agrees_with_its_labels_and_reloads(smoke, tmp_path):
    from goodhart.worlds.smoke import save_smoke_models

    """build_gold on the smoke world (its deterministic gold as the labeller, its 2-layer GPT-2 as the
    backbone): held-out agreement above chance, facts written, and LearnedGold scores unbounded floats
    that rank the held-out completions as the build measured."""
    backbone = save_smoke_models(tmp_path / "models")["policy"]
    target = tmp_path / "gold"
    sampling = SamplingConfig(max_new_tokens=12, engine="fast")
    facts = build_gold(smoke, smoke.prompts[:40], backbone, target, sampling, layers=2, samples=8)
    assert facts["heldout_agreement"] > 0.6, facts
    assert json.loads((target / "facts.json").read_text())["val_pairs"] == facts["val_pairs"] > 50
    gold = LearnedGold(target, backbone, layers=2)
    scores = np.array(gold([("p", "great fun superb"), ("p", "tedious boring weak"), ("p", "")]))
    assert scores.dtype == np.float64 and np.isfinite(scores).all()
    assert scores[0] > scores[1]  # the smoke gold's positive words above its negative ones
