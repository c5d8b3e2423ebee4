"""The prefix engine (each prompt computed once, its KV cache shared by its samples) and the fast engine
(hand-written decode loop: prompts once, finished rows dropped, inverse-CDF sampling) sample the same
distribution as the hf engine: ≥ 2,000 completions from each, independent seeds, on the same prompts;
two-sample tests at the 1% level on the mean per-token log-probability under the fp32 policy, the
length and the gold score, effect sizes printed. The same tests reject a sampler at temperature 0.7
(they have the power to see a shift). Same seed: the very same samples for prefix."""

import numpy as np
import pytest
import torch
from scipy import stats

from goodhart.sampling.engines import inverse_cdf_sample, sample_completions
from goodhart.worlds.smoke import smoke_world

K, PROMPTS, TOKENS = 100, 20, 10


@pytest.fixture(scope="module")
def world():
    return smoke_world(0)


def _draw(world, seed, engine, prompts, temperature=1.0):
    texts = [world.render(p) for p in prompts]
    return sample_completions(world.policy, world.tokenizer, texts, K, max_new_tokens=TOKENS, batch_size=128,
                              seed=seed, engine=engine, add_special_tokens=world.add_special_tokens,
                              temperature=temperature)


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


def _sample_stats(world, prompts, seed, engine, temperature=1.0) -> dict:
    comps = _draw(world, seed, engine, prompts, temperature)
    flat_p = [p for p in prompts for _ in range(K)]
    flat_c = [c for row in comps for c in row]
    assert len(flat_c) == K * PROMPTS >= 2000
    return {
        "logprob": np.array([_mean_logprob(world, p, c) for p, c in zip(flat_p, flat_c, strict=True)]),
        "length": np.array([len(world.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in flat_c]),
        "gold": np.asarray(world.gold_scores(flat_p, flat_c), dtype=float),
    }


def _agree(a: dict, b: dict, names: str) -> dict:
    """{statistic: True where Mann-Whitney and KS both keep equality at the 1% level}; effect sizes printed."""
    out = {}
    for key in ("logprob", "length", "gold"):
        p = stats.mannwhitneyu(a[key], b[key]).pvalue
        ks = stats.ks_2samp(a[key], b[key]).pvalue
        effect = (a[key].mean() - b[key].mean()) / np.sqrt((a[key].var() + b[key].var()) / 2 + 1e-12)
        print(f"{names} {key}: {a[key].mean():.4f} vs {b[key].mean():.4f}, standardised difference {effect:+.3f}, "
              f"Mann-Whitney p {p:.3f}, KS p {ks:.3f}")
        out[key] = p > 0.01 and ks > 0.01
    return out


@pytest.fixture(scope="module")
def hf_stats(world):
    return _sample_stats(world, world.prompts[:PROMPTS], 1, "hf")


@pytest.mark.parametrize("engine", ["prefix", "fast"])
def test_engine_samples_the_same_distribution(world, hf_stats, engine):
    agree = _agree(hf_stats, _sample_stats(world, world.prompts[:PROMPTS], 2, engine), f"hf vs {engine}")
    assert all(agree.values()), agree


def test_distribution_check_sees_a_temperature_shift(world, hf_stats):
    """The same check on a sampler at temperature 0.7 (the fast engine): it must not pass."""
    agree = _agree(hf_stats, _sample_stats(world, world.prompts[:PROMPTS], 3, "fast", temperature=0.7),
                   "hf vs fast at T = 0.7")
    assert not all(agree.values()), agree


def test_inverse_cdf_sample_draws_the_softmax_law():
    """20,000 draws from softmax([0, log 2, log 5, -inf]) = (1/8, 2/8, 5/8, 0): chi-square p > 0.001 and
    the masked token never drawn."""
    torch.manual_seed(0)
    scores = torch.tensor([[0.0, np.log(2), np.log(5), -np.inf]]).repeat(20_000, 1)
    counts = np.bincount(inverse_cdf_sample(scores).numpy(), minlength=4)
    assert counts[3] == 0
    assert stats.chisquare(counts[:3], 20_000 * np.array([1, 2, 5]) / 8).pvalue > 1e-3, counts


def test_fast_engine_drops_finished_rows_without_changing_them(world):
    """Every completion ends at its first EOS or at max_new_tokens, and a seeded draw is reproducible."""
    texts = [world.render(p) for p in world.prompts[:4]]
    args = dict(max_new_tokens=TOKENS, batch_size=64, seed=5, engine="fast", add_special_tokens=world.add_special_tokens)
    a = sample_completions(world.policy, world.tokenizer, texts, 16, **args)
    b = sample_completions(world.policy, world.tokenizer, texts, 16, **args)
    assert a == b
    lengths = [len(world.tokenizer(c, add_special_tokens=False)["input_ids"]) for row in a for c in row]
    assert max(lengths) <= TOKENS and min(lengths) < TOKENS  # some rows finished early, none ran past the limit


def test_prefix_engine_with_the_same_seed_gives_the_same_samples(world):
    """Same seed, same batches: the shared cache changes no logits beyond float rounding, so the draws
    match (mixed prompts in a batch included: batch_size 5 over 3 prompts × 4)."""
    texts = [world.render(p) for p in world.prompts[:3]]
    args = dict(max_new_tokens=8, batch_size=5, seed=0, add_special_tokens=world.add_special_tokens)
    hf = sample_completions(world.policy, world.tokenizer, texts, 4, **args)
    prefix = sample_completions(world.policy, world.tokenizer, texts, 4, engine="prefix", **args)
    same = np.mean([a == b for ra, rb in zip(hf, prefix, strict=True) for a, b in zip(ra, rb, strict=True)])
    assert same >= 0.9, same


def test_fast_engine_falls_back_for_logits_it_cannot_reproduce(world, capsys):
    """A model whose config soft-caps its logits is sampled by the prefix engine (said in one note), so
    the fast engine never draws from a law other than the model's."""
    from goodhart.sampling.engines import fast_engine_fits

    assert fast_engine_fits(world.policy)
    world.policy.config.final_logit_softcapping = 30.0
    try:
        assert not fast_engine_fits(world.policy)
        texts = [world.render(p) for p in world.prompts[:2]]
        args = dict(max_new_tokens=6, batch_size=8, seed=0, add_special_tokens=world.add_special_tokens)
        fallback = sample_completions(world.policy, world.tokenizer, texts, 4, engine="fast", **args)
        prefix = sample_completions(world.policy, world.tokenizer, texts, 4, engine="prefix", **args)
        assert fallback == prefix
        assert "sampling with the prefix engine" in capsys.readouterr().err
    finally:
        world.policy.config.final_logit_softcapping = None
