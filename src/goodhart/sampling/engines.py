"""Batched sampling of K completions per prompt from a causal LM.

Engines (sampling.engine): hf — left-padded batches through `generate`; prefix — the same, but each
batch's distinct prompts are run once and their KV cache is shared by all their samples (a Best-of-n
pool draws N samples of one prompt: the prompt, ~40 tokens against 32 generated, is computed once
instead of N times); fast (the default) — a hand-written decode loop (fast_rollout: prompts once and
their KV cache kept once, attended to by their rows together (sampling.cascade), the generated tokens'
cache grown in place, finished rows dropped, inverse-CDF sampling); vllm — the optional GPU engine.
benchmarks/sampling.py compares them; tests/test_sampling_engines.py checks they sample one law.
"""

from contextlib import contextmanager

import numpy as np
import torch

from goodhart import dist
from goodhart.errors import GoodhartError
from goodhart.progress import console, progress_bar
from goodhart.sampling.cascade import FAST_ATTENTION, SharedPrefix, register_fast_attention
from goodhart.sampling.rollout import (
    Rollout,
    completion_mask,
    encode_prompts,
    inverse_cdf_sample,
    rollout,
    sampling_config,
    sampling_warpers,
)


def sample_completions(model, tokenizer, texts: list[str], k: int, *, max_new_tokens: int,
                       temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 64,
                       add_special_tokens: bool = False, description: str = "sample",
                       seed: int | None = None, engine: str = "hf",
                       dtype: torch.dtype = torch.float32, cascade: bool | None = None) -> list[list[str]]:
    """Draw k completions for each of B policy inputs; returns B lists of k decoded strings.

    The B·k sequences are generated in batches of `batch_size` with left padding; a prompt's k copies
    sit side by side so most batches need no padding. Pure sampling by default (top_k off, top_p 1).
    With `seed`, batch j is sampled after torch.manual_seed(f(seed, j)): the samples are the same
    whether one process draws every batch or torchrun's K processes each draw every K-th
    (dist.map_chunks; all ranks get the whole list). Special tokens are stripped from the decoded text.
    engine: hf (rollout), prefix (prefix_rollout: the prompts computed once) or fast (fast_rollout: the
    prompts computed once, finished rows dropped, sampling by inverse CDF; the decoder body in `dtype`:
    fp32 by default, bf16 pays only on CPUs with AVX-512 BF16 or AMX, or on a GPU; `cascade`: its
    shared-prompt attention, by default where prompts repeat and are ≥ 32 tokens — False copies the prompts' cache to every row).
    """
    device = next(model.parameters()).device
    flat = [t for t in texts for _ in range(k)]
    model.eval()
    if engine == "fast" and not fast_engine_fits(model):
        console.print(f"note: sampling.engine=fast does not handle {type(model).__name__}'s output head "
                      "(scaled or soft-capped logits); sampling with the prefix engine")
        engine = "prefix"
    parts = _decoder_parts(model, dtype) if engine == "fast" else None

    def draw(chunk: list[str], j: int) -> list[str]:
        if seed is not None:
            torch.manual_seed(seed * 1_000_003 + j)
        if engine == "fast":
            return fast_rollout(model, tokenizer, chunk, add_special_tokens, max_new_tokens, temperature, top_p,
                                parts=parts, cascade=cascade)
        if engine == "prefix":
            return prefix_rollout(model, tokenizer, chunk, add_special_tokens, max_new_tokens, temperature, top_p)
        enc = encode_prompts(tokenizer, chunk, add_special_tokens, device)
        return rollout(model, tokenizer, enc, max_new_tokens, temperature, top_p).texts

    with progress_bar(dist.share_size(len(flat), batch_size), description) as advance:
        out = dist.map_chunks(draw, flat, batch_size, advance)
    return [out[i * k : (i + 1) * k] for i in range(len(texts))]


@torch.no_grad()
def prefix_rollout(model, tokenizer, texts: list[str], add_special_tokens: bool, max_new_tokens: int,
                   temperature: float = 1.0, top_p: float = 1.0) -> list[str]:
    """One completion per text, each distinct text's prompt computed once: its KV cache (all but the
    last prompt token, left-padded across the distinct texts) is copied to every row that repeats it,
    then `generate` continues from the last prompt token. Same model, same sampling law as rollout()."""
    first = {t: i for i, t in enumerate(dict.fromkeys(texts))}  # distinct text → its row in the prefill
    distinct, rows = list(first), torch.tensor([first[t] for t in texts])
    device = next(model.parameters()).device
    enc = encode_prompts(tokenizer, distinct, add_special_tokens, device)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    from transformers import DynamicCache

    cache = DynamicCache()
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1], past_key_values=cache,
          use_cache=True)
    cache.batch_select_indices(rows.to(device))
    seqs = model.generate(input_ids=ids[rows], attention_mask=mask[rows], past_key_values=cache,
                          generation_config=sampling_config(tokenizer, max_new_tokens, temperature, top_p))
    comp = seqs[:, ids.shape[1]:]
    valid = completion_mask(comp, tokenizer.eos_token_id, tokenizer.pad_token_id)
    return tokenizer.batch_decode(comp.masked_fill(~valid, tokenizer.pad_token_id), skip_special_tokens=True)



def _growing_cache(kv_dtype: torch.dtype | None = None, capacity: int = 0):
    """A DynamicCache whose layers append into preallocated buffers (capacity doubled when full) instead of
    torch.cat: DynamicLayer copies the whole KV cache at every decode step, 40% of a step's time at 128
    rows on 2 CPU cores (measured with torch.profiler). keys/values stay views of the filled part, so
    every DynamicLayer method (lengths, masks, batch selection) reads them unchanged. With `kv_dtype`
    the buffers hold keys and values in that dtype (fp32 for a bf16 body: fast_attention). `capacity`: the
    positions a decode will need (prompt + new tokens), allocated at once; batch selection copies only the
    filled positions into buffers of the same capacity (the unfilled rest and the 64-position floor were most of
    what a lab pool, whose prompts are 6–18 tokens, copied: benchmarks/README.md)."""
    from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

    class GrowingLayer(DynamicLayer):
        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                self._k = self._v = None
            length = self.get_seq_length()
            end = length + key_states.shape[-2]
            if self._k is None or end > self._k.shape[-2]:
                grown = []
                for old, new in ((self.keys, key_states), (self.values, value_states)):
                    size = capacity if capacity >= end else max(2 * end, 64)
                    buf = new.new_empty(*new.shape[:2], size, new.shape[-1], dtype=kv_dtype or new.dtype)
                    if length:
                        buf[:, :, :length] = old
                    grown.append(buf)
                self._k, self._v = grown
            self._k[:, :, length:end] = key_states
            self._v[:, :, length:end] = value_states
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
            return self.keys, self.values

        def batch_select_indices(self, indices):
            length = self.get_seq_length()
            if length > 0:
                grown = []
                for buf in (self._k, self._v):
                    out = buf.new_empty(len(indices), *buf.shape[1:])
                    out[:, :, :length] = buf[:, :, :length].index_select(0, indices)
                    grown.append(out)
                self._k, self._v = grown
                self.keys, self.values = self._k[:, :, :length], self._v[:, :, :length]

    cache = DynamicCache()
    Cache.__init__(cache, layer_class_to_replicate=GrowingLayer)
    return cache


LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale",
                    "mup_width_scale")  # config fields of models whose logits are not lm_head(last hidden state)


def fast_engine_fits(model) -> bool:
    """Whether the fast engine samples this model's law: its logits must be exactly the output embedding
    applied to the decoder's last hidden state (true of Llama/SmolLM2, GPT-2, Qwen, Mistral; not of models
    that scale or soft-cap their logits, which the engine would silently get wrong)."""
    config = getattr(model, "config", None)
    return (model.get_output_embeddings() is not None and getattr(model, "base_model", None) is not None
            and not any(getattr(config, key, None) not in (None, 1, 1.0) for key in LOGIT_TRANSFORMS))


def _decoder_parts(model, dtype: torch.dtype):
    """(decoder body in `dtype`, fp32 output head) of a causal LM: a bf16 body is a copy cast once
    (autocast would recast every weight at every step) that attends on an fp32 KV cache (fast_attention);
    the head stays fp32 so the sampled law is set by fp32 logits of the last hidden state. On an AVX2-only
    CPU bf16 matrix products run 6× slower than fp32 (measured), hence fp32 where bf16 is not native
    (goodhart.device.sampling_dtype). An fp32 body is the model's own (fast_rollout switches its attention
    to fast_attention for the call)."""
    import copy

    head = model.get_output_embeddings()
    if dtype == torch.float32:
        return model.base_model.eval(), head
    body = copy.deepcopy(model.base_model).to(dtype)
    if body.config._attn_implementation == "sdpa":
        register_fast_attention()
        body.set_attn_implementation(FAST_ATTENTION)
    return body.eval(), head


@contextmanager
def fast_attention_of(body):
    """The body's attention switched to fast_attention (shared-prompt decoding) for the block, then back;
    yields whether it runs there (models on SDPA; others keep their attention, prompts copied per row)."""
    before = body.config._attn_implementation
    if before not in ("sdpa", FAST_ATTENTION):
        yield False
        return
    register_fast_attention()
    body.set_attn_implementation(FAST_ATTENTION)
    try:
        yield True
    finally:
        body.set_attn_implementation(before)


def lm_head_logits(hidden: torch.Tensor, head) -> torch.Tensor:
    """fp32 logits of the last hidden states (B, H) under the output embedding `head`. On a CPU through
    oneDNN's linear kernel: at the LM head's shape (128 × 576 · 576 × 49,152) MKL's sgemm measured
    100 GFLOP/s on an AMD EPYC (AVX-512), oneDNN 171, both fp32 (sums in another order: 2e-6 apart)."""
    x, w = hidden.float(), head.weight.float()
    b = None if head.bias is None else head.bias.float()
    if x.device.type == "cpu" and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
    return torch.nn.functional.linear(x, w, b)


# Shared-prompt attention loops over the distinct prompts in Python at every layer and step: it pays where
# each row would otherwise re-read a long prompt (SmolLM2's chat-rendered prompts, 41–49 tokens), and costs
# where prompts are short (the lab world's 6–18 tokens; benchmarks/README.md 2026-12-07)
CASCADE_MIN_PROMPT_TOKENS = 32


def _prefill(body, tokenizer, texts: list[str], add_special_tokens: bool, cascade: bool | None, room: int = 0):
    """Each distinct prompt run once. Returns (last-position hidden state per row, the KV cache to decode
    on, per-row left-padded prompt ids, attention mask and last position, SharedPrefix or None). With `cascade` the prompts'
    cache stays one per prompt (SharedPrefix) and decoding starts a new cache for the generated tokens;
    without, the prompts' cache is copied to every row that repeats it; None decides by the prompts' length.
    `room`: the new tokens the decode will add (the cache is allocated for prompt + room positions)."""
    device = next(body.parameters()).device
    first = {t: i for i, t in enumerate(dict.fromkeys(texts))}  # distinct text → its row in the prefill
    prefill_row = torch.tensor([first[t] for t in texts], device=device)
    enc = encode_prompts(tokenizer, list(first), add_special_tokens, device)
    mask = enc["attention_mask"]
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    kv_dtype = torch.float32 if body.config._attn_implementation == FAST_ATTENTION else None
    width = enc["input_ids"].shape[1]
    cache = _growing_cache(kv_dtype, width + room)
    hidden = body(input_ids=enc["input_ids"], attention_mask=mask, position_ids=pos, past_key_values=cache,
                  use_cache=True).last_hidden_state[:, -1]
    if cascade is None:  # auto: where prompts repeat and are long enough that reading their cache once pays
        cascade = len(texts) >= 2 * len(first) and width >= CASCADE_MIN_PROMPT_TOKENS
    prefix = None
    if cascade:
        prefix, cache = SharedPrefix.of(cache, mask, prefill_row), _growing_cache(kv_dtype, room)
    else:
        cache.batch_select_indices(prefill_row)
    return hidden[prefill_row], cache, enc["input_ids"][prefill_row], mask[prefill_row], pos[prefill_row, -1], prefix


@torch.no_grad()
def fast_rollout(model, tokenizer, texts: list[str], add_special_tokens: bool, max_new_tokens: int,
                 temperature: float = 1.0, top_p: float = 1.0, *, parts=None, cascade: bool | None = None) -> list[str]:
    """One completion per text by a hand-written decode loop (the fast engine).

    Written by hand because generate() cannot do these things a Best-of-n pool needs on a CPU: each
    distinct prompt is prefilled once and its KV cache and last-position logits are shared by every row
    that repeats it; where prompts repeat (`cascade`; default: ≥ 2 rows per distinct prompt of ≥ 32 tokens, on SDPA
    models) the prompt's keys and values stay one copy that its rows attend to together
    (goodhart.sampling.cascade); rows that reached EOS leave the batch once a quarter of it has finished
    (generate keeps computing them until the longest row ends); the KV cache grows in place
    (_growing_cache). The decoder body is `parts` (_decoder_parts: fp32 by default, or bf16 from weights
    cast once) while the logits stay fp32. Tokens are drawn with transformers' own temperature and top-p
    warpers (top_k off), stopping at EOS, as rollout() does, by inverse-CDF sampling
    (inverse_cdf_sample: the same law as torch.multinomial at 1/10 of its cost).
    """
    out, valid, *_ = _fast_tokens(model, tokenizer, texts, add_special_tokens, max_new_tokens, temperature,
                                  top_p, parts=parts, cascade=cascade)
    return _texts(tokenizer, out, valid)


@torch.no_grad()
def fast_policy_rollout(model, tokenizer, texts: list[str], add_special_tokens: bool, max_new_tokens: int,
                        temperature: float = 1.0, top_p: float = 1.0, generator: torch.Generator | None = None,
                        drop_finished: bool = True) -> Rollout:
    """rollout()'s Rollout (token ids kept, the prompts left-padded to one length P, completions as long as
    the longest) drawn by the fast engine's fp32 decode loop, tokens from `generator` if given (policy
    training: BOND's two concurrent rollouts each draw from their own). rollout() with a SeededSampler draws
    one uniform per row and step, finished rows included; with drop_finished=False so does this, and the
    same generator gives the same tokens (tests/test_sampling_engines.py); dropping finished rows changes
    which uniform a row gets, not the law. The Rollout carries each drawn token's log-probability under the
    model's fp32 logits (temperature 1): what token_logprobs would compute again (evaluation's KL reads it)."""
    out, valid, prompt_ids, prompt_mask, logp = _fast_tokens(model, tokenizer, texts, add_special_tokens,
                                                             max_new_tokens, temperature, top_p, generator=generator,
                                                             drop_finished=drop_finished, keep_logprobs=True)
    T = max(int(valid.sum(1).max()), 1)  # generate stops once every row has finished
    out, valid = out[:, :T], valid[:, :T]
    return Rollout(torch.cat([prompt_ids, out], dim=1), torch.cat([prompt_mask, valid.to(prompt_mask.dtype)], dim=1),
                   prompt_ids.shape[1], valid, _texts(tokenizer, out, valid), logp[:, :T] * valid)


def _texts(tokenizer, out: torch.Tensor, valid: torch.Tensor) -> list[str]:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return tokenizer.batch_decode(out.masked_fill(~valid, pad), skip_special_tokens=True)


def _fast_tokens(model, tokenizer, texts, add_special_tokens, max_new_tokens, temperature, top_p, *, parts=None,
                 cascade=None, generator=None, drop_finished=True, keep_logprobs=False):
    """(completion ids (B, max_new_tokens), their completion mask, prompt ids, prompt mask, with keep_logprobs
    the drawn tokens' log-probabilities under the fp32 logits at temperature 1, else None) of the fast engine."""
    body, head = parts or _decoder_parts(model, torch.float32)
    with fast_attention_of(body) as fast:
        return _decode(body, head, tokenizer, texts, add_special_tokens, max_new_tokens, temperature, top_p,
                       cascade if fast else False, generator, drop_finished, keep_logprobs)


def _decode(body, head, tokenizer, texts, add_special_tokens, max_new_tokens, temperature, top_p, cascade,
            generator=None, drop_finished=True, keep_logprobs=False):
    """fast_rollout's decode loop."""
    device = head.weight.device
    hidden, cache, prompt_ids, prompt_mask, pos, prefix = _prefill(body, tokenizer, texts, add_special_tokens,
                                                                   cascade, max_new_tokens)
    mask = prompt_mask
    warpers = sampling_warpers(temperature, top_p)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    out = torch.full((len(texts), max_new_tokens), pad if pad is not None else 0, dtype=torch.long, device=device)
    # log π of each drawn token (temperature 1), for policy rollouts only: a pool would discard it
    logp = torch.zeros(len(texts), max_new_tokens, device=device) if keep_logprobs else None
    rows = torch.arange(len(texts), device=device)  # the text of each row of the batch
    live = torch.ones(len(texts), dtype=torch.bool, device=device)  # rows that have not produced EOS
    for t in range(max_new_tokens):
        logits = scores = lm_head_logits(hidden, head)
        for warp in warpers:
            scores = warp(None, scores)
        token = inverse_cdf_sample(scores, generator)
        out[rows[live], t] = token[live]
        if logp is not None:
            logp[rows[live], t] = (logits.gather(1, token[:, None])[:, 0] - torch.logsumexp(logits, dim=-1))[live]
        if eos is not None:
            live &= token != eos
        if t == max_new_tokens - 1 or not live.any():
            break
        if drop_finished and live.sum() <= 0.75 * len(live):  # finished rows leave the batch and its cache
            keep = live.nonzero().squeeze(1)
            rows, token, mask, pos, live = rows[keep], token[keep], mask[keep], pos[keep], live[keep]
            cache.batch_select_indices(keep)
            prefix = None if prefix is None else prefix.select(keep)
        pos = pos + 1
        if prefix is None:  # the prompts' cache is in every row: the mask covers prompt and generated tokens
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            extra = {"attention_mask": mask}
        else:  # cascade_attention masks the prompts' padding itself; generated tokens have none
            extra = {"shared_prefix": prefix}
        hidden = body(input_ids=token[:, None], position_ids=pos[:, None], past_key_values=cache, use_cache=True,
                      **extra).last_hidden_state[:, -1]
    return out, completion_mask(out, eos, pad), prompt_ids, prompt_mask, logp


def check_engine(engine: str) -> None:
    """Refuse sampling.engine=vllm up front (before a run directory exists) where it cannot run."""
    if engine != "vllm":
        return
    if dist.launched():
        raise GoodhartError("sampling.engine=vllm runs in one process (vLLM shards over GPUs itself); run without torchrun")
    try:
        import vllm  # noqa: F401
    except ImportError:
        raise GoodhartError("sampling.engine=vllm needs vLLM: pip install -e '.[vllm]' on a CUDA machine "
                            "(or use sampling.engine=hf)") from None


def vllm_completions(model, tokenizer, texts: list[str], k: int, *, max_new_tokens: int, temperature: float = 1.0,
                     top_p: float = 1.0, add_special_tokens: bool = False, seed: int = 0) -> list[list[str]]:
    """sample_completions through vLLM (sampling.engine=vllm; optional extra, GPU only): the same
    token ids in, k completions per input out, special tokens stripped. vLLM loads the weights itself
    from the directory the policy was loaded from; its RNG differs from transformers', so the samples
    do (the distribution does not)."""
    check_engine("vllm")
    from vllm import LLM, SamplingParams

    path = getattr(model, "name_or_path", "")
    if not path:
        raise GoodhartError("sampling.engine=vllm needs a policy loaded from a checkpoint directory; this world "
                            "builds its policy in memory (use sampling.engine=hf)")
    llm = LLM(model=str(path), tokenizer=str(path), seed=seed, dtype="auto")
    params = SamplingParams(n=k, temperature=temperature, top_p=top_p, top_k=-1, max_tokens=max_new_tokens,
                            seed=seed, skip_special_tokens=True)
    ids = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]
    outputs = llm.generate([{"prompt_token_ids": x} for x in ids], params)
    return [[c.text for c in out.outputs] for out in outputs]


def completion_grid(completions: list[list[str]]) -> np.ndarray:
    """B lists of K strings → (B, K) object array (for fancy indexing by pair tables)."""
    grid = np.empty((len(completions), len(completions[0])), dtype=object)
    for b, row in enumerate(completions):
        grid[b, :] = row
    return grid
