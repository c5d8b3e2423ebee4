"""Shared-prompt (cascade) attention for the fast engine's decode steps.

A Best-of-n pool decodes many rows that share one prompt. With the prompt's KV cache copied to every
row, each decode step reads the prompt's keys and values once per row (128 rows × ~44 prompt tokens ×
30 layers at SmolLM2-135M's pool shapes). Here the prompt's keys and values are kept once per distinct
prompt: the rows of one prompt attend to it in one matrix product (their queries stacked), attend to
their own generated tokens separately, and the two softmax parts are merged exactly by their
log-sum-exp (softmax over the concatenation, computed in two blocks). Written by hand because neither
torch's SDPA nor transformers' attention functions take a key/value block shared by a group of rows.
"""

from dataclasses import dataclass

import torch

FAST_ATTENTION = "goodhart_fast"  # the attention implementation the fast engine's decoder body runs


@dataclass
class SharedPrefix:
    """The prompts' KV cache, once per distinct prompt, and which prompt each decoded row continues.

    keys/values: one (P, KV heads, L, head dim) tensor per layer; bias: (P, 1, 1, L), 0 at prompt tokens
    and −inf at left padding; row_prompt: (R,) the prompt of each row; segments: runs (prompt, first row,
    end row) of consecutive rows that share a prompt, in row order."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    bias: torch.Tensor
    row_prompt: torch.Tensor
    segments: list[tuple[int, int, int]]

    @classmethod
    def of(cls, cache, prompt_mask: torch.Tensor, row_prompt: torch.Tensor) -> "SharedPrefix":
        """From the cache of a prefill over the distinct prompts (prompt_mask: their attention mask)."""
        bias = torch.zeros(prompt_mask.shape, dtype=torch.float32, device=prompt_mask.device)
        bias = bias.masked_fill(prompt_mask == 0, float("-inf"))[:, None, None, :]
        return cls([layer.keys for layer in cache.layers], [layer.values for layer in cache.layers], bias,
                   row_prompt, runs(row_prompt))

    def select(self, keep: torch.Tensor) -> "SharedPrefix":
        """The same prompts for the rows `keep` (after finished rows left the batch)."""
        row_prompt = self.row_prompt[keep]
        return SharedPrefix(self.keys, self.values, self.bias, row_prompt, runs(row_prompt))


def runs(row_prompt: torch.Tensor) -> list[tuple[int, int, int]]:
    """Consecutive rows with the same prompt: [(prompt, start, end)] covering every row in order."""
    values = row_prompt.tolist()
    out, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            out.append((values[start], start, i))
            start = i
    return out


def _softmax_block(scores: torch.Tensor, values: torch.Tensor):
    """(unnormalised output, row sums, row maxima) of softmax(scores) @ values, for a log-sum-exp merge."""
    top = scores.amax(-1, keepdim=True)
    weights = torch.exp(scores - top)
    return weights @ values, weights.sum(-1, keepdim=True), top


def cascade_attention(query, key, value, prefix: SharedPrefix, layer: int, scaling: float) -> torch.Tensor:
    """Attention of one decoded token per row over its prompt (prefix, shared) and its own generated
    tokens (key/value: (R, KV heads, T, d), the current token included, no padding).

    query: (R, H, 1, d) with H = KV heads × G (query head h reads KV head h // G, as transformers' repeat_kv).
    Returns (R, 1, H, d) in the cache's dtype, as transformers' attention functions return it."""
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    q = query.to(key.dtype).reshape(rows, kv_heads, heads // kv_heads, dim)
    own_out, own_sum, own_top = _softmax_block(q @ key.transpose(-1, -2) * scaling, value)
    pre_out, pre_sum, pre_top = torch.empty_like(own_out), torch.empty_like(own_sum), torch.empty_like(own_top)
    keys, values = prefix.keys[layer], prefix.values[layer]
    for p, start, end in prefix.segments:  # the rows of one prompt: their queries stacked into one product
        qs = q[start:end].transpose(0, 1).reshape(kv_heads, -1, dim)  # (KV heads, rows·G, d)
        scores = qs @ keys[p].transpose(-1, -2) * scaling + prefix.bias[p, 0]
        out, total, top = _softmax_block(scores, values[p])
        shape = (kv_heads, end - start, heads // kv_heads)
        pre_out[start:end] = out.reshape(*shape, dim).transpose(0, 1)
        pre_sum[start:end] = total.reshape(*shape, 1).transpose(0, 1)
        pre_top[start:end] = top.reshape(*shape, 1).transpose(0, 1)
    top = torch.maximum(pre_top, own_top)
    a, b = torch.exp(pre_top - top), torch.exp(own_top - top)
    out = (pre_out * a + own_out * b) / (pre_sum * a + own_sum * b)
    return out.reshape(rows, heads, dim)[:, None]


def decode_attention(query, key, value, attention_mask, scaling: float) -> torch.Tensor:
    """Attention of one query token per row (a decode step) as two batched matrix products: query (R, H, 1, d),
    key/value (R, KV heads, T, d), attention_mask None, bool (True: attend) or additive, broadcastable to
    (R, 1, 1, ≥ T). Returns (R, 1, H, d) in the cache's dtype. Written by hand because torch's CPU
    flash-attention kernel is built for long queries: at one query token, tiny heads and short caches (the lab
    policy's 8 heads of 16) it spent 43% of a pool's decode time (torch.profiler; benchmarks/README.md)."""
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    q = query.to(key.dtype).reshape(rows, kv_heads, heads // kv_heads, dim)  # query head h reads KV head h // G
    scores = (q * scaling) @ key.transpose(-1, -2)  # (R, KV heads, G, T)
    if attention_mask is not None:
        mask = attention_mask[..., : key.shape[-2]]
        scores = scores.masked_fill_(~mask, float("-inf")) if mask.dtype == torch.bool else scores.add_(mask)
    # softmax in place, normalised after the product with the values (one division of (R, H, d), not of the
    # scores): torch.softmax's kernel over rows of ~40 keys is slow at these shapes (benchmarks/README.md)
    weights = scores.sub_(scores.amax(-1, keepdim=True)).exp_()
    return ((weights @ value) / weights.sum(-1, keepdim=True)).reshape(rows, heads, dim)[:, None]


def fast_attention(module, query, key, value, attention_mask, *, scaling=None, shared_prefix=None, **kwargs):
    """The fast engine's attention: cascade_attention in decode steps that pass a `shared_prefix`,
    decode_attention in other decode steps on a CPU; otherwise (the prefill, or a GPU) transformers' SDPA on
    the cache's dtype. A bf16 body keeps an fp32 KV cache: the query is upcast, the output cast back (torch's
    CPU flash-attention kernel ran 2.4× slower in bf16 than in fp32 at decode shapes, 4.8 vs 2.0 ms per call,
    128 rows, SmolLM2-135M)."""
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    if shared_prefix is not None:
        return cascade_attention(query, key, value, shared_prefix, module.layer_idx, scale).to(query.dtype), None
    if query.shape[2] == 1 and query.device.type == "cpu":
        return decode_attention(query, key, value, attention_mask, scale).to(query.dtype), None
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    out, weights = sdpa_attention_forward(module, query.to(key.dtype), key, value, attention_mask, scaling=scaling,
                                          **kwargs)
    return out.to(query.dtype), weights


def register_fast_attention() -> None:
    """Make FAST_ATTENTION a transformers attention implementation (its masks are SDPA's)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(FAST_ATTENTION, fast_attention)
    AttentionMaskInterface.register(FAST_ATTENTION, sdpa_mask)
