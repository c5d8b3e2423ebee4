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
    """engine: hf, prefix, fast (fp32 body) or fast-bf16 (bf16 body on an fp32 KV cache, fp32 logits)."""
    texts = [world.render(p) for p in prompts]
    dtype = torch.bfloat16 if engine == "fast-bf16" else torch.float32
    return sample_completions(world.policy, world.tokenizer, texts, K, max_new_tokens=TOKENS, batch_size=128,
                              seed=seed, engine=engine.removesuffix("-bf16"), dtype=dtype,
                              add_special_tokens=world.add_special_tokens, temperature=temperature)


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


@pytest.mark.parametrize("engine", ["prefix", "fast", "fast-bf16"])
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


def test_inverse_cdf_sample_draws_the_law_across_blocks():
    """The two-level inverse CDF on a vocabulary of 1,000 (blocks of 256, the last one padded): mass on
    tokens in four blocks, the first and last token of a block among them, and masked tokens inside and
    around them; 40,000 draws, chi-square p > 0.001, no masked token drawn."""
    torch.manual_seed(1)
    hot = torch.tensor([0, 255, 256, 511, 700, 999])
    p = torch.tensor([0.05, 0.3, 0.1, 0.2, 0.15, 0.2])
    scores = torch.full((40_000, 1000), -np.inf)
    scores[:, hot] = torch.log(p)
    counts = np.bincount(inverse_cdf_sample(scores).numpy(), minlength=1000)
    assert counts.sum() == counts[hot.numpy()].sum() == 40_000
    assert stats.chisquare(counts[hot.numpy()], 40_000 * p.numpy()).pvalue > 1e-3, counts[hot.numpy()]


def test_inverse_cdf_sample_is_the_one_level_inverse_cdf_of_the_same_uniform():
    """Same generator state, same token as the plain inverse CDF over the whole vocabulary (float64), on
    random logits over 49,152 tokens (SmolLM2's vocabulary) for 512 rows."""
    scores = torch.randn(512, 49_152) * 3
    got = inverse_cdf_sample(scores, torch.Generator().manual_seed(5))
    cdf = torch.cumsum(torch.softmax(scores, -1).double(), -1)
    u = torch.rand(512, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * cdf[:, -1:]
    want = torch.searchsorted(cdf, u, right=True).squeeze(1)
    assert (got == want).float().mean() >= 0.998, (got != want).sum()


def test_fast_engine_bf16_body_attends_on_an_fp32_kv_cache(world):
    """A bf16 body is a copy whose attention runs on fp32 keys and values (torch's bf16 flash attention is
    2.4× slower on a CPU); the policy itself stays fp32 with its own attention."""
    from goodhart.sampling.engines import FAST_ATTENTION, _decoder_parts, _growing_cache

    body, head = _decoder_parts(world.policy, torch.bfloat16)
    assert body.config._attn_implementation == FAST_ATTENTION and next(body.parameters()).dtype == torch.bfloat16
    assert world.policy.config._attn_implementation == "sdpa" and head.weight.dtype == torch.float32
    cache = _growing_cache(torch.float32)
    ids = world.tokenizer([world.render(world.prompts[0])], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = body(input_ids=ids, past_key_values=cache, use_cache=True).last_hidden_state
        ref = world.policy.base_model(input_ids=ids).last_hidden_state
    assert cache.layers[0].keys.dtype == torch.float32
    assert torch.allclose(out.float(), ref, atol=0.1 * ref.abs().max().item()), (out.float() - ref).abs().max()


def test_growing_cache_selects_rows_and_keeps_its_capacity():
    """Batch selection gives each kept row its own keys and values (repeats included, as a prompt's cache is copied
    to its rows) in buffers of the same capacity, so the decode appends in place afterwards; capacity is the
    prompt + new tokens allocated at once, and a cache that outgrows it still grows."""
    from goodhart.sampling.engines import _growing_cache

    gen = torch.Generator().manual_seed(0)
    cache = _growing_cache(torch.float32, capacity=9)
    k, v = torch.randn(3, 2, 5, 4, generator=gen), torch.randn(3, 2, 5, 4, generator=gen)
    cache.update(k, v, 0)
    layer = cache.layers[0]
    assert layer._k.shape[-2] == 9
    rows = torch.tensor([2, 0, 2, 2])
    cache.batch_select_indices(rows)
    assert torch.equal(layer.keys, k[rows]) and torch.equal(layer.values, v[rows]) and layer._k.shape[-2] == 9
    buffer = layer._k.data_ptr()
    step_k, step_v = torch.randn(4, 2, 4, 4, generator=gen), torch.randn(4, 2, 4, 4, generator=gen)
    keys, values = cache.update(step_k, step_v, 0)
    assert layer._k.data_ptr() == buffer and torch.equal(keys, torch.cat([k[rows], step_k], dim=2))
    assert torch.equal(values, torch.cat([v[rows], step_v], dim=2))
    keys, _ = cache.update(step_k[:, :, :1], step_v[:, :, :1], 0)  # position 10 > capacity 9: regrown, kept
    assert keys.shape[-2] == 10 and torch.equal(keys[:, :, :9], torch.cat([k[rows], step_k], dim=2))


def test_fast_engine_drops_finished_rows_without_changing_them(world):
    """Every completion ends at its first EOS or at max_new_tokens, and a seeded draw is reproducible."""
    texts = [world.render(p) for p in world.prompts[:4]]
    args = dict(max_new_tokens=TOKENS, batch_size=64, seed=5, engine="fast", add_special_tokens=world.add_special_tokens)
    a = sample_completions(world.policy, world.tokenizer, texts, 16, **args)
    b = sample_completions(world.policy, world.tokenizer, texts, 16, **args)
    assert a == b
    lengths = [len(world.tokenizer(c, add_special_tokens=False)["input_ids"]) for row in a for c in row]
    assert max(lengths) <= TOKENS and min(lengths) < TOKENS  # some rows finished early, none ran past the limit


def test_cascade_attention_equals_attention_over_the_prompt_copied_to_every_row():
    """Shared-prompt attention (one KV copy per prompt, log-sum-exp merge with each row's own tokens) against
    SDPA over the prompt's keys copied to every row: grouped-query heads (3 KV heads × 3), left-padded
    prompts, rows of one prompt in two runs."""
    from torch.nn.functional import scaled_dot_product_attention

    from goodhart.sampling.cascade import SharedPrefix, cascade_attention, runs

    gen = torch.Generator().manual_seed(0)
    prompts, kv_heads, group, length, own, dim = 3, 3, 3, 7, 5, 16
    keys, values = (torch.randn(prompts, kv_heads, length, dim, generator=gen) for _ in range(2))
    prompt_mask = torch.ones(prompts, length, dtype=torch.long)
    prompt_mask[0, :2] = prompt_mask[2, :4] = 0
    row_prompt = torch.tensor([0, 0, 1, 1, 1, 2, 0, 2])
    rows = len(row_prompt)
    q = torch.randn(rows, kv_heads * group, 1, dim, generator=gen)
    k, v = (torch.randn(rows, kv_heads, own, dim, generator=gen) for _ in range(2))
    cache = type("Cache", (), {"layers": [type("Layer", (), {"keys": keys, "values": values})()]})()
    prefix = SharedPrefix.of(cache, prompt_mask, row_prompt)
    assert prefix.segments == runs(row_prompt) == [(0, 0, 2), (1, 2, 5), (2, 5, 6), (0, 6, 7), (2, 7, 8)]
    got = cascade_attention(q, k, v, prefix, 0, dim**-0.5)
    full_k = torch.cat([keys[row_prompt], k], 2).repeat_interleave(group, 1)
    full_v = torch.cat([values[row_prompt], v], 2).repeat_interleave(group, 1)
    visible = torch.cat([prompt_mask[row_prompt].bool(), torch.ones(rows, own, dtype=torch.bool)], 1)
    want = scaled_dot_product_attention(q, full_k, full_v, attn_mask=visible[:, None, None, :]).transpose(1, 2)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    kept = prefix.select(torch.tensor([1, 3, 7]))
    assert kept.segments == [(0, 0, 1), (1, 1, 2), (2, 2, 3)]


@pytest.mark.parametrize("mask", ["bool", "additive", "none"])
def test_decode_attention_equals_sdpa_at_one_query_token(mask):
    """The fast engine's decode-step attention against torch's SDPA: grouped-query heads (2 KV heads × 3),
    left padding masked by a bool or an additive mask longer than the cache (as transformers passes it)."""
    from torch.nn.functional import scaled_dot_product_attention

    from goodhart.sampling.cascade import decode_attention

    gen = torch.Generator().manual_seed(1)
    rows, kv_heads, group, length, dim = 5, 2, 3, 9, 16
    q = torch.randn(rows, kv_heads * group, 1, dim, generator=gen)
    k, v = (torch.randn(rows, kv_heads, length, dim, generator=gen) for _ in range(2))
    visible = torch.ones(rows, 1, 1, length + 2, dtype=torch.bool)
    visible[0, ..., :3] = visible[3, ..., :1] = False
    given = {"bool": visible, "additive": torch.zeros(visible.shape).masked_fill(~visible, float("-inf")),
             "none": None}[mask]
    seen = visible[..., :length] if mask != "none" else None
    want = scaled_dot_product_attention(q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1),
                                        attn_mask=seen, scale=0.3).transpose(1, 2)
    got = decode_attention(q, k, v, given, 0.3)
    assert got.shape == want.shape == (rows, 1, kv_heads * group, dim)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_engine_shared_prompt_attention_gives_the_samples_of_copied_prompts(world, dtype):
    """Same seed: decoding on one KV copy per prompt (cascade) draws the samples that decoding on the
    prompts copied to every row draws (float rounding aside), mixed prompts in a batch and finished rows
    leaving it included, prompts of three lengths; the policy's own attention is back to SDPA afterwards."""
    from goodhart.sampling.engines import _decoder_parts, fast_rollout

    p = world.prompts
    lengths = [p[0], f"{p[1]} {p[2]}", f"{p[3]} {p[4]} {p[5]}"]  # 4, 7 and 10 tokens: left padding in the prefill
    texts = [world.render(x) for x in lengths for _ in range(12)]
    parts = _decoder_parts(world.policy, dtype)
    draws = {}
    for cascade in (True, False):
        torch.manual_seed(3)
        draws[cascade] = fast_rollout(world.policy, world.tokenizer, texts, world.add_special_tokens, TOKENS,
                                      parts=parts, cascade=cascade)
    same = np.mean([a == b for a, b in zip(draws[True], draws[False], strict=True)])
    assert same >= 0.9, same
    assert len(set(draws[True])) > 3  # not one repeated string
    assert world.policy.config._attn_implementation == "sdpa"


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


def test_sampling_dtype_auto_is_bf16_only_where_the_cpu_has_native_bf16(tmp_path):
    from goodhart.device import native_bf16, sampling_dtype

    cpu = torch.device("cpu")
    zen4, avx2 = tmp_path / "zen4", tmp_path / "avx2"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    assert native_bf16(cpu, str(zen4)) and not native_bf16(cpu, str(avx2))
    assert not native_bf16(cpu, str(tmp_path / "missing"))
    assert sampling_dtype("fp32", cpu) == torch.float32 and sampling_dtype("bf16", cpu) == torch.bfloat16
    assert sampling_dtype("auto", cpu) == (torch.bfloat16 if native_bf16(cpu) else torch.float32)


def test_pool_key_holds_the_fast_engines_resolved_dtype(world):
    from goodhart.config.base import SamplingConfig
    from goodhart.sampling.pool import pool_key

    def key(**kw):
        return pool_key(world, world.prompts[:2], 4, SamplingConfig(**kw), 0)

    assert key(engine="fast", dtype="fp32") != key(engine="fast", dtype="bf16")
    assert key(engine="hf", dtype="fp32") == key(engine="hf", dtype="bf16")
    auto_is = "bf16" if key(engine="fast", dtype="auto") == key(engine="fast", dtype="bf16") else "fp32"
    assert key(engine="fast", dtype="auto") == key(engine="fast", dtype=auto_is)
