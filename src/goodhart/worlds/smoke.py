"""The smoke world: a tiny random GPT-2 policy over a word vocabulary, a deterministic gold
reward, and a tiny BERT proxy backbone — all built locally in about a second.

The gold reward prefers positive words and penalises repeated words and negative words; a proxy
trained on a few hundred comparisons learns part of that, which is enough to show the BoN curves.
"""

import math
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from goodhart.worlds.base import World

POSITIVE = "good great fine lovely best fun brilliant superb moving charming witty delightful".split()
NEGATIVE = "bad awful dull worst boring bland weak tedious clumsy silly messy painful".split()
NEUTRAL = (
    "the a an this that film movie plot story actor actress scene cast script director "
    "is was and but with of to in on it its very quite rather so too ending music camera"
).split()
SPECIAL = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "[CLS]", "[SEP]"]
PROMPT_SEED = 1234  # prompts are part of the world's definition, not of a run's seed


def vocabulary() -> dict[str, int]:
    return {w: i for i, w in enumerate(SPECIAL + NEUTRAL + POSITIVE + NEGATIVE)}


def gold(pairs: list[tuple[str, str]]) -> list[float]:
    """Deterministic gold: (#positive − #negative) / sqrt(1 + #words) − 0.5 · #repeated words.

    Usable as an `hf` world gold callable: `goodhart.worlds.smoke:gold`.
    """
    pos, neg = set(POSITIVE), set(NEGATIVE)
    out = []
    for _prompt, text in pairs:
        words = text.split()
        valence = sum(w in pos for w in words) - sum(w in neg for w in words)
        out.append(valence / math.sqrt(1 + len(words)) - 0.5 * (len(words) - len(set(words))))
    return out


def _tokenizer(proxy: bool) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(vocabulary(), unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if proxy:
        vocab = vocabulary()
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]"
    )


def smoke_prompts(count: int = 64, words: list[str] = NEUTRAL, seed: int = PROMPT_SEED) -> list[str]:
    """Fixed 3-word openings (neutral words; the OOD set uses sentiment words)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=3, replace=False)) for _ in range(count)]


def make_policy(seed: int) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    tok = _tokenizer(proxy=False)
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tok), n_positions=64, n_embd=48, n_layer=2, n_head=2,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    return GPT2LMHeadModel(config).eval(), tok


def make_proxy(seed: int) -> tuple[BertForSequenceClassification, PreTrainedTokenizerFast]:
    """A fresh tiny BERT (2 layers, width 64) with a 1-output score head."""
    tok = _tokenizer(proxy=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=64, num_labels=1, pad_token_id=tok.pad_token_id,
    )
    return BertForSequenceClassification(config), tok


def smoke_world(seed: int = 0) -> World:
    policy, tok = make_policy(seed)
    return World(
        name="smoke", policy_id=f"smoke-gpt2-seed{seed}", policy=policy, tokenizer=tok, prompts=smoke_prompts(),
        render=lambda p: f"[BOS] {p}", add_special_tokens=False,
        gold=gold, gold_name="smoke-gold", make_proxy=make_proxy, proxy_name="tiny-bert",
        ood_prompts=smoke_prompts(32, POSITIVE + NEGATIVE, PROMPT_SEED + 1),
    )


def save_smoke_models(directory: str | Path, seed: int = 0) -> dict[str, str]:
    """Save the smoke policy and proxy backbone as ordinary HF checkpoints (for `hf` world tests/demos).

    Returns {"policy": dir, "proxy_backbone": dir, "prompts": jsonl path}.
    """
    import json

    directory = Path(directory)
    policy, tok = make_policy(seed)
    policy.save_pretrained(directory / "policy")
    tok.save_pretrained(directory / "policy")
    proxy, ptok = make_proxy(seed)
    proxy.save_pretrained(directory / "proxy")
    ptok.save_pretrained(directory / "proxy")
    prompts = directory / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in smoke_prompts()))
    return {"policy": str(directory / "policy"), "proxy_backbone": str(directory / "proxy"), "prompts": str(prompts)}
