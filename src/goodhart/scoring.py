"""Scoring decoded (prompt, completion) text with a sequence-classification reward model."""

import numpy as np
import torch

FORMATS = ("pair", "concat", "chat")  # how an RM reads (prompt, completion): see encode_pairs


def encode_pairs(tokenizer, prompts: list[str], completions: list[str], max_length: int, fmt: str = "pair"):
    """Tokenise (prompt, completion) the way the RM was trained, padded to the batch.

    pair (goodhart's own RMs): a text pair, truncating the longer side first. concat (trl's RewardTrainer
    on standard rows): one sequence prompt + completion + eos, as trl builds it. chat: [user: prompt,
    assistant: completion] through the RM's own chat template (RMs trained on conversations; independent
    of the policy's template)."""
    if fmt == "concat":
        eos = tokenizer.eos_token or tokenizer.sep_token or ""
        texts = [p + c + (eos if not c.endswith(eos) else "") for p, c in zip(prompts, completions, strict=True)]
        return tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    if fmt == "chat":
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}, {"role": "assistant", "content": c}],
                                               tokenize=False) for p, c in zip(prompts, completions, strict=True)]
        return tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt",
                         add_special_tokens=False)
    return tokenizer(prompts, completions, truncation="longest_first", max_length=max_length,
                     padding=True, return_tensors="pt")


def reward_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, L) logits → (B,) reward: the single logit, or last-label minus first-label logit for L ≥ 2."""
    return logits[:, 0] if logits.shape[-1] == 1 else logits[:, -1] - logits[:, 0]


@torch.no_grad()
def score_pairs(model, tokenizer, prompts: list[str], completions: list[str],
                batch_size: int = 64, max_length: int = 256, fmt: str = "pair") -> np.ndarray:
    """Reward of each (prompt, completion) → (B,) float64. Batches sorted by length to cut padding."""
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([len(p) + len(c) for p, c in zip(prompts, completions, strict=True)], kind="stable")
    out = np.empty(len(prompts))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = encode_pairs(tokenizer, [prompts[i] for i in idx], [completions[i] for i in idx], max_length,
                           fmt).to(device)
        out[idx] = reward_from_logits(model(**enc).logits).float().cpu().numpy()
    return out
