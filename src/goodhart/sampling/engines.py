"""Batched sampling of K completions per prompt from a causal LM (KV cache via generate).

Engines (sampling.engine): hf — left-padded batches through `generate`; prefix — the same, but each
batch's distinct prompts are run once and their KV cache is shared by all their samples (a Best-of-n
pool draws N samples of one prompt: the prompt, ~40 tokens against 32 generated, is computed once
instead of N times), and with precision bf16 the weights are cast once (autocast would recast them at
every step); vllm — the optional GPU engine. benchmarks/sampling.py compares them.
"""

import numpy as np
import torch

from goodhart import dist
from goodhart.errors import GoodhartError
from goodhart.progress import progress_bar
from goodhart.sampling.rollout import completion_mask, encode_prompts, rollout, sampling_config


def sample_completions(model, tokenizer, texts: list[str], k: int, *, max_new_tokens: int,
                       temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 64,
                       add_special_tokens: bool = False, description: str = "sample",
                       seed: int | None = None, shared_prefix: bool = False) -> list[list[str]]:
    """Draw k completions for each of B policy inputs; returns B lists of k decoded strings.

    The B·k sequences are generated in batches of `batch_size` with left padding; a prompt's k copies
    sit side by side so most batches need no padding. Pure sampling by default (top_k off, top_p 1).
    With `seed`, batch j is sampled after torch.manual_seed(f(seed, j)): the samples are the same
    whether one process draws every batch or torchrun's K processes each draw every K-th
    (dist.map_chunks; all ranks get the whole list). Special tokens are stripped from the decoded text.
    shared_prefix: the prefix engine (prefix_rollout) — same distribution, the prompts computed once.
    """
    device = next(model.parameters()).device
    flat = [t for t in texts for _ in range(k)]
    model.eval()

    def draw(chunk: list[str], j: int) -> list[str]:
        if seed is not None:
            torch.manual_seed(seed * 1_000_003 + j)
        if shared_prefix:
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
