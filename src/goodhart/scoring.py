"""Scoring decoded (prompt, completion) text with a sequence-classification reward model."""

from dataclasses import dataclass

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


@dataclass
class EncodedPairs:
    """(prompt, completion) pairs tokenised once, in length-sorted batches, for scoring by several reward models
    that share one tokenizer (the RM suite's members, ensembles and weight averages score the same sets: tokenising
    them again for every model repeated the tokenizer's work nine times a replicate: benchmarks/README.md)."""

    order: np.ndarray  # the pairs' indices in batch order
    batches: list  # one padded BatchEncoding per run of `order`, in order

    def __len__(self) -> int:
        return len(self.order)


def encode_for_scoring(tokenizer, prompts: list[str], completions: list[str], batch_size: int = 64,
                       max_length: int = 256, fmt: str = "pair") -> EncodedPairs:
    """The pairs in batches of `batch_size` sorted by length (to cut padding), each tokenised by encode_pairs."""
    order = np.argsort([len(p) + len(c) for p, c in zip(prompts, completions, strict=True)], kind="stable")
    batches = [encode_pairs(tokenizer, [prompts[i] for i in idx], [completions[i] for i in idx], max_length, fmt)
               for idx in (order[start : start + batch_size] for start in range(0, len(order), batch_size))]
    return EncodedPairs(order, batches)


@torch.no_grad()
def score_encoded(model, encoded: EncodedPairs) -> np.ndarray:
    """Reward of each encoded pair, in the pairs' original order → (B,) float64."""
    model.eval()
    device = next(model.parameters()).device
    out, start = np.empty(len(encoded)), 0
    for enc in encoded.batches:
        idx = encoded.order[start : start + len(enc["input_ids"])]
        out[idx] = reward_from_logits(model(**enc.to(device)).logits).float().cpu().numpy()
        start += len(idx)
    return out


def score_pairs(model, tokenizer, prompts: list[str], completions: list[str],
                batch_size: int = 64, max_length: int = 256, fmt: str = "pair") -> np.ndarray:
    """Reward of each (prompt, completion) → (B,) float64. Batches sorted by length to cut padding."""
    return score_encoded(model, encode_for_scoring(tokenizer, prompts, completions, batch_size, max_length, fmt))
