"""An LLM-as-judge gold reward: a local causal LM reads a rubric, the prompt and the response, and the
score is log p(yes) − log p(no) for its next token. Batched (left padding), no grad.

Use it as the `hf` world's gold by naming it in a module of your own:

    # my_gold.py
    from goodhart.worlds.judge import make_llm_judge
    judge = make_llm_judge("path/to/judge-model", rubric="Is this response positive and on topic?")

    goodhart run --world hf --set hf.gold=my_gold:judge ...

Gold scores are cached by (gold, prompt, completion) hash (worlds/base.py), so a rerun never re-asks
the judge; the cache key includes a hash of my_gold.py, so editing the rubric invalidates it.
"""

from collections.abc import Callable

import numpy as np
import torch

from goodhart.errors import GoodhartError

TEMPLATE = "{rubric}\nPrompt: {prompt}\nResponse: {completion}\nAnswer (yes or no):"


def make_llm_judge(model_dir: str, rubric: str, yes: str = " yes", no: str = " no", template: str = TEMPLATE,
                   batch_size: int = 16, max_length: int = 512) -> Callable[[list[tuple[str, str]]], np.ndarray]:
    """gold([(prompt, completion), …]) → (B,) float64 of log p(yes) − log p(no) under the judge."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = []
    for word in (yes, no):
        t = tok(word, add_special_tokens=False)["input_ids"]
        if len(t) != 1 or t[0] == tok.unk_token_id:
            raise GoodhartError(f"judge answer {word!r} must be one known token of the judge's tokenizer, got {t}")
        ids.append(t[0])
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"  # the answer is read at the last position of every row

    @torch.no_grad()
    def gold(pairs: list[tuple[str, str]]) -> np.ndarray:
        out = np.empty(len(pairs))
        for start in range(0, len(pairs), batch_size):
            texts = [template.format(rubric=rubric, prompt=p, completion=c) for p, c in pairs[start:start + batch_size]]
            enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
            # left padding: positions count from each row's first real token (as generate() does)
            positions = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], position_ids=positions).logits
            logp = torch.log_softmax(logits[:, -1].float(), dim=-1)
            out[start:start + len(texts)] = (logp[:, ids[0]] - logp[:, ids[1]]).numpy()
        return out

    return gold
