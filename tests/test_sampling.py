"""Batched sampling from the tiny smoke policy."""

import torch

from goodhart.sampling.engines import sample_completions
from goodhart.worlds import smoke


def _sample(world, seed, batch_size, k=5):
    torch.manual_seed(seed)
    texts = [world.render(p) for p in world.prompts[:3]]
    return sample_completions(world.policy, world.tokenizer, texts, k, max_new_tokens=6, batch_size=batch_size)


def test_shapes_lengths_and_vocabulary():
    world = smoke.smoke_world(seed=0)
    out = _sample(world, 0, batch_size=4)
    assert len(out) == 3 and all(len(row) == 5 for row in out)
    vocab = set(smoke.vocabulary())
    for row in out:
        for text in row:
            assert len(text.split()) <= 6 and set(text.split()) <= vocab
            assert "[BOS]" not in text and "[PAD]" not in text


def test_seeded_and_diverse():
    world = smoke.smoke_world(seed=0)
    a, b = _sample(world, 0, 16), _sample(world, 0, 16)
    assert a == b
    assert _sample(world, 1, 16) != a
    assert len({t for row in a for t in row}) > 10  # sampling, not greedy
