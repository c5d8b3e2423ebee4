"""Rollouts for policy training: sample with token ids kept, and per-token log-probabilities.

Shapes: B sequences, P prompt tokens (left-padded), T completion tokens.
"""

from dataclasses import dataclass

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from goodhart import dist


@dataclass
class Rollout:
    """B sampled sequences: prompt + completion ids, attention mask, completion mask and decoded text."""

    input_ids: torch.Tensor  # (B, P + T)
    attention_mask: torch.Tensor  # (B, P + T)
    prompt_len: int  # P
    valid_mask: torch.Tensor  # (B, T): True for completion tokens up to and including EOS
    texts: list[str]
    # (B, T) log π(y_t | x, y_<t) under the sampling model's own fp32 logits at temperature 1 (0 past EOS),
    # where the sampler computed them (the fast engine); None: token_logprobs computes them
    logprobs: torch.Tensor | None = None


def encode_prompts(tokenizer, texts: list[str], add_special_tokens: bool, device) -> dict:
    return tokenizer(texts, return_tensors="pt", padding=True, padding_side="left",
                     add_special_tokens=add_special_tokens).to(device)


def completion_mask(completion_ids: torch.Tensor, eos_id: int | None, pad_id: int | None) -> torch.Tensor:
    """(B, T) True up to and including the first EOS; everything after it (padding) is False."""
    if eos_id is None:
        return torch.ones_like(completion_ids, dtype=torch.bool) if pad_id is None else completion_ids != pad_id
    is_eos = completion_ids == eos_id
    after_eos = (torch.cumsum(is_eos.int(), dim=1) - is_eos.int()) > 0
    return ~after_eos


def sampling_config(tokenizer, max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0) -> GenerationConfig:
    """Pure sampling at `temperature` (top_k off; nucleus only if top_p < 1), stopping at EOS."""
    return GenerationConfig(do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
                            max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                            eos_token_id=tokenizer.eos_token_id)


def inverse_cdf_sample(scores: torch.Tensor, generator: torch.Generator | None = None, block: int = 256) -> torch.Tensor:
    """SPEC §1 pure sampling: one token per row drawn from softmax(scores) (B, V): the first index whose
    cumulative probability exceeds a uniform draw. The same law as torch.multinomial(softmax(scores), 1), which
    draws V exponential variates per row (190 ms of a 500 ms decode step at 128 × 49,152 on 2 CPU cores,
    measured); this draws one uniform per row (from `generator`, or torch's global generator).

    The inverse CDF in two levels: the vocabulary in blocks of `block` tokens, a cumulative sum over the
    block totals picks the block, a second one inside that block the token; u − (mass before the block) is
    uniform on the block's mass, so the law is the one-level inverse CDF's. A cumulative sum over the whole
    vocabulary was 7% of a decode step (24–37 ms per step; torch.profiler). The cumulative sums are float64 so
    rounding cannot skip or favour a token (a block's own total is an fp32 sum of 256 fp32 weights
    exp(s − max s), as exact as those weights; leaving softmax's division out saves a pass over (B, V)); the
    within-block draw is a fraction of the block's own sum, so it cannot fall past the block's last token of
    positive probability."""
    B, V = scores.shape
    scores = scores.float()
    weights = (scores - scores.amax(-1, keepdim=True)).exp_()  # softmax unnormalised: u is drawn on its total
    pad = -V % block
    if pad:
        weights = torch.nn.functional.pad(weights, (0, pad))
    blocks = weights.view(B, -1, block)
    totals = torch.cumsum(blocks.sum(-1).double(), dim=-1)  # (B, V / block)
    u = torch.rand(B, 1, dtype=torch.float64, device=scores.device, generator=generator) * totals[:, -1:]
    k = torch.searchsorted(totals, u, right=True).clamp(max=totals.shape[1] - 1)  # (B, 1): the block
    before = torch.where(k > 0, totals.gather(1, (k - 1).clamp(min=0)), torch.zeros_like(u))
    mass = totals.gather(1, k) - before
    inner = torch.cumsum(blocks[torch.arange(B, device=scores.device), k[:, 0]].double(), dim=-1)  # (B, block)
    frac = ((u - before) / mass).clamp(0.0, 1.0 - 1e-12)
    j = torch.searchsorted(inner, frac * inner[:, -1:], right=True).clamp(max=block - 1)
    return (k * block + j).squeeze(1).clamp(max=V - 1)


def sampling_warpers(temperature: float, top_p: float) -> list:
    """transformers' own temperature and top-p warpers (top_k off), as generate's sampling applies them."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    return ([TemperatureLogitsWarper(temperature)] if temperature != 1.0 else []) + (
        [TopPLogitsWarper(top_p)] if top_p < 1.0 else [])


class SeededSampler(LogitsProcessor):
    """Sampling inside `generate` from a generator of its own: temperature and top-p warp the scores as
    generate's sampling does, inverse_cdf_sample draws the token, and the returned scores are −inf but
    at that token, so greedy decoding (do_sample=False) emits exactly the drawn token. generate itself
    can only sample from torch's global generator, which two concurrent rollouts would share (their
    samples would then depend on thread timing); with one generator per rollout they do not."""

    def __init__(self, generator: torch.Generator, temperature: float = 1.0, top_p: float = 1.0):
        self.generator = generator
        self.warpers = sampling_warpers(temperature, top_p)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float()
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        token = inverse_cdf_sample(scores, self.generator)
        return torch.full_like(scores, float("-inf")).scatter_(1, token[:, None], 0.0)


@torch.no_grad()
def rollout(model, tokenizer, enc: dict, max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
            generator: torch.Generator | None = None) -> Rollout:
    """Sample one completion per row of the encoded prompts `enc` (repeat rows for k samples per prompt);
    with `generator`, tokens are drawn from it (SeededSampler) instead of torch's global generator."""
    if generator is None:
        gen, processors = sampling_config(tokenizer, max_new_tokens, temperature, top_p), None
    else:
        gen = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                               eos_token_id=tokenizer.eos_token_id)
        processors = LogitsProcessorList([SeededSampler(generator, temperature, top_p)])
    # FSDP-sharded weights: every rank must run the same number of forward passes until all are done
    seqs = model.generate(**enc, generation_config=gen, logits_processor=processors,
                          synced_gpus=dist.active() and dist.is_sharded(model))
    P = enc["input_ids"].shape[1]
    comp = seqs[:, P:]
    valid = completion_mask(comp, tokenizer.eos_token_id, tokenizer.pad_token_id)
    attention = torch.cat([enc["attention_mask"], valid.to(enc["attention_mask"].dtype)], dim=1)
    texts = tokenizer.batch_decode(comp.masked_fill(~valid, tokenizer.pad_token_id), skip_special_tokens=True)
    return Rollout(seqs, attention, P, valid, texts)


def token_logprobs(model, ro: Rollout, temperature: float = 1.0, share_prompts: bool | None = None) -> torch.Tensor:
    """(B, T) log π(y_t | x, y_<t) of the completion tokens under `model` (grad flows if enabled).

    Positions are taken from the attention mask so left padding does not shift them. With `share_prompts`
    and rows that repeat a prompt (k samples per prompt, BOND's best anchor sample next to the policy's),
    each distinct prompt is computed once (shared_prompt_logits); None (default) does so where the repeated
    prompt tokens are ≥ a quarter of all tokens (SmolLM2's 44-token chat prompts: 1.45× at 2 samples per
    prompt, benchmarks/policy_step.py --logprobs; a toy model's 4-token prompts gain nothing from a second
    forward call). In a torchrun process group the whole rows go through one forward pass, as DDP / FSDP
    expect one forward per backward.
    """
    P = ro.prompt_len
    logits = None
    if share_prompts is not False and not dist.active():
        logits = shared_prompt_logits(model, ro, min_saved=0.25 if share_prompts is None else 0.0)
    if logits is None:
        position_ids = (ro.attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        # the LM head only on the T + 1 last positions (the prompt's logits are never read): it is a fifth of
        # a 135M model's forward FLOPs and the full (B, L, vocab) logits tensor dominates its memory
        keep = ro.input_ids.shape[1] - P + 1
        logits = model(input_ids=ro.input_ids, attention_mask=ro.attention_mask, position_ids=position_ids,
                       logits_to_keep=keep).logits[:, -keep:-1]
    logits = logits.float() / temperature
    targets = ro.input_ids[:, P:]
    return torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).squeeze(-1) * ro.valid_mask


def shared_prompt_logits(model, ro: Rollout, min_saved: float = 0.0) -> torch.Tensor | None:
    """(B, T, V) logits that predict the completion tokens, each distinct prompt (ids and padding) computed
    once: its KV cache, indexed out to the rows that repeat it (a differentiable gather: the prompt's
    gradient sums over its rows), is what the completions attend to. The same function as one forward
    over the whole rows; the prompt's share of the work drops from B·P tokens to U·P (SmolLM2 chat
    prompts are ~44 tokens against ≤ 32 generated). None when no prompt repeats, or when the repeated prompt
    tokens are under `min_saved` of all tokens."""
    from transformers import DynamicCache

    P, T = ro.prompt_len, ro.input_ids.shape[1] - ro.prompt_len
    head = torch.cat([ro.input_ids[:, :P], ro.attention_mask[:, :P].to(ro.input_ids.dtype)], dim=1)
    distinct, rows = torch.unique(head, dim=0, return_inverse=True)
    saved = (len(head) - len(distinct)) * P
    if saved == 0 or saved < min_saved * ro.input_ids.numel() or T == 0:
        return None
    ids, mask = distinct[:, :P], distinct[:, P:].to(ro.attention_mask.dtype)
    cache = DynamicCache()
    first = model(input_ids=ids, attention_mask=mask, position_ids=(mask.long().cumsum(-1) - 1).clamp(min=0),
                  past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    if T == 1:
        return first[rows, None]
    cache.batch_select_indices(rows)
    positions = (ro.attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    rest = model(input_ids=ro.input_ids[:, P:-1], attention_mask=ro.attention_mask[:, :-1],
                 position_ids=positions[:, P:-1], past_key_values=cache, use_cache=True).logits
    return torch.cat([first[rows, None], rest], dim=1)
