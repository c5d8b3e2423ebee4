"""Batched sampling of K completions per prompt from a causal LM (KV cache via generate)."""

import numpy as np

from goodhart.policy.rollout import encode_prompts, rollout
from goodhart.progress import progress_bar


def sample_completions(model, tokenizer, texts: list[str], k: int, *, max_new_tokens: int,
                       temperature: float = 1.0, top_p: float = 1.0, batch_size: int = 64,
                       add_special_tokens: bool = False, description: str = "sample") -> list[list[str]]:
    """Draw k completions for each of B policy inputs; returns B lists of k decoded strings.

    The B·k sequences are generated in batches of `batch_size` with left padding; a prompt's k copies
    sit side by side so most batches need no padding. Pure sampling by default (top_k off, top_p 1).
    Seed torch beforehand for reproducibility. Special tokens are stripped from the decoded text.
    """
    device = next(model.parameters()).device
    flat = [t for t in texts for _ in range(k)]
    out: list[str] = []
    model.eval()
    with progress_bar(len(flat), description) as advance:
        for s in range(0, len(flat), batch_size):
            chunk = flat[s : s + batch_size]
            enc = encode_prompts(tokenizer, chunk, add_special_tokens, device)
            out.extend(rollout(model, tokenizer, enc, max_new_tokens, temperature, top_p).texts)
            advance(len(chunk))
    return [out[i * k : (i + 1) * k] for i in range(len(texts))]


def completion_grid(completions: list[list[str]]) -> np.ndarray:
    """B lists of K strings → (B, K) object array (for fancy indexing by pair tables)."""
    grid = np.empty((len(completions), len(completions[0])), dtype=object)
    for b, row in enumerate(completions):
        grid[b, :] = row
    return grid
