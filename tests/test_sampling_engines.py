"""The prefix engine (each prompt computed once, its KV cache shared by its samples) samples the same
distribution as the hf engine: ≥ 2,000 completions from each, independent seeds, on the same prompts;
two-sample tests at the 1% level on the mean per-token log-probability under the fp32 policy, the
length and the gold score, effect sizes printed. Same seed: the very same samples."""

import numpy as np
import pytest
import torch
from scipy import stats

from goodhart.sampling.engines import sample_completions
from goodhart.worlds.smoke import smoke_world

K, PROMPTS, TOKENS = 100, 20, 10


@pytest.fixture(scope="module")
def world():
    return smoke_world(0)


def _draw(world, seed, shared_prefix, prompts):
    texts = [world.render(p) for p in prompts]
    return sample_completions(world.policy, world.tokenizer, texts, K, max_new_tokens=TOKENS, batch_size=128,
                              seed=seed, shared_prefix=shared_prefix, add_special_tokens=world.add_special_tokens)


@torch.no_grad()
def _mean_logprob(world, prompt: str, completion: str) -> float:
    tok = world.tokenizer
    head = tok(world.render(prompt), return_tensors="pt", add_special_tokens=world.add_special_tokens)["input_ids"]
    tail = tok(completion, return_tensors="pt", add_special_tokens=False)["input_ids"]
    if tail.shape[1] == 0:
        return 0.0
    ids = torch.cat([head, tail], dim=1)
    logp = torch.log_softmax(world.policy(input_ids=ids).logits[0, head.shape[1] - 1 : -1].float(), -1)
    return float(logp.gather(-1, tail[0, :, None]).mean())


def test_prefix_engine_samples_the_same_distribution(world):
    prompts = world.prompts[:PROMPTS]
    stats_of = {}
    for name, seed, shared in (("hf", 1, False), ("prefix", 2, True)):
        comps = _draw(world, seed, shared, prompts)
        flat_p = [p for p in prompts for _ in range(K)]
        flat_c = [c for row in comps for c in row]
        assert len(flat_c) == K * PROMPTS >= 2000
        stats_of[name] = {
            "logprob": np.array([_mean_logprob(world, p, c) for p, c in zip(flat_p, flat_c, strict=True)]),
            "length": np.array([len(world.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in flat_c]),
            "gold": np.asarray(world.gold_scores(flat_p, flat_c), dtype=float),
        }
    for key in ("logprob", "length", "gold"):
        a, b = stats_of["hf"][key], stats_of["prefix"][key]
        p = stats.mannwhitneyu(a, b).pvalue
        ks = stats.ks_2samp(a, b).pvalue
        effect = (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2 + 1e-12)
        print(f"{key}: hf {a.mean():.4f} prefix {b.mean():.4f}, standardised difference {effect:+.3f}, "
              f"Mann-Whitney p {p:.3f}, KS p {ks:.3f}")
        assert p > 0.01 and ks > 0.01, key


def test_prefix_engine_with_the_same_seed_gives_the_same_samples(world):
    """Same seed, same batches: the shared cache changes no logits beyond float rounding, so the draws
    match (mixed prompts in a batch included: batch_size 5 over 3 prompts × 4)."""
    texts = [world.render(p) for p in world.prompts[:3]]
    args = dict(max_new_tokens=8, batch_size=5, seed=0, add_special_tokens=world.add_special_tokens)
    hf = sample_completions(world.policy, world.tokenizer, texts, 4, **args)
    prefix = sample_completions(world.policy, world.tokenizer, texts, 4, shared_prefix=True, **args)
    same = np.mean([a == b for ra, rb in zip(hf, prefix, strict=True) for a, b in zip(ra, rb, strict=True)])
    assert same >= 0.9, same
