"""The sentiment world from the packaged models (slow tier: converts/loads the 135M policy)."""

import numpy as np
import pytest
import torch

from goodhart import load_run_config, load_world
from goodhart.sampling.engines import sample_completions
from goodhart.scoring import score_pairs

pytestmark = pytest.mark.slow


def test_sentiment_world_samples_and_scores():
    world = load_world(load_run_config(world="sentiment"))
    assert world.name == "sentiment"
    assert len(world.prompts) >= 200 and len(world.ood_prompts) >= 200
    assert sum(p.numel() for p in world.policy.parameters()) > 100_000_000
    assert "Continue this movie review" in world.render(world.prompts[0])
    torch.manual_seed(0)
    comps = sample_completions(world.policy, world.tokenizer, [world.render(p) for p in world.prompts[:2]], 2,
                               max_new_tokens=12)
    flat = [c for row in comps for c in row]
    gold = world.gold_scores([p for p in world.prompts[:2] for _ in range(2)], flat)
    assert np.all(np.abs(gold) <= 1)
    assert world.gold_scores(["a", "b"], ["a wonderful, brilliant film", "an awful, boring mess"]).tolist()[0] > 0.5
    proxy, tok = world.make_proxy(0)
    assert score_pairs(proxy, tok, ["x"] * len(flat), flat).shape == (4,)


def test_gao_world_builds_a_learned_gold_apart_from_the_proxies_prompts():
    """--world gao: the gold RM is built once (cached), agrees with its VADER labels on held-out prompts,
    ranks a plainly positive text above a negative one, never saw the world's prompts, and goodhart doctor
    reports it."""
    from goodhart.doctor import checks
    from goodhart.worlds.gao import GOLD_PROMPTS, gold_facts

    world = load_world(load_run_config(world="gao"))
    facts = gold_facts()
    assert facts is not None and facts["heldout_agreement"] > 0.6, facts  # 0.670 on 536 pairs measured
    assert len(world.prompts) == 305 - GOLD_PROMPTS
    scores = world.gold_scores(["a"] * 3, ["a wonderful, brilliant, moving film"] * 1 + ["an awful, boring mess"] * 2)
    assert scores[0] > scores[1] == pytest.approx(scores[2])
    assert world.gold_name.startswith("learned-gold") and world.name == "gao"
    row = next(detail for what, _, detail in checks() if what == "gao world gold RM")
    assert "held-out agreement" in row
