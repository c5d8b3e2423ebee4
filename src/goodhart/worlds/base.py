"""The World record and the loader that builds one from a RunConfig."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from goodhart.errors import GoodhartError
from goodhart.runs import iter_jsonl

# gold([(prompt, completion), ...]) -> B floats; prompts are the raw prompts, not the policy input.
GoldFn = Callable[[list[tuple[str, str]]], "np.ndarray | list[float]"]


@dataclass
class World:
    """Everything a study needs from its setting. Gold and proxy both score decoded text."""

    name: str
    policy_id: str  # identifies the policy weights (for the sample cache)
    policy: object  # a transformers causal LM (PreTrainedModel)
    tokenizer: object  # the policy's tokenizer
    prompts: list[str]  # raw prompts: what gold and proxy see beside the completion
    render: Callable[[str], str]  # raw prompt -> the text the policy is conditioned on
    add_special_tokens: bool  # whether tokenising render(prompt) should add BOS etc.
    gold: GoldFn
    gold_name: str
    make_proxy: Callable[[int], tuple]  # seed -> (fresh sequence-classification model, tokenizer)
    proxy_name: str
    ood_prompts: list[str] | None = None  # another text domain, for out-of-distribution RM checks

    def gold_scores(self, prompts: list[str], completions: list[str]) -> np.ndarray:
        """Gold scores as float64 (B,), refusing NaN/inf with the offending rows named."""
        scores = np.asarray(self.gold(list(zip(prompts, completions, strict=True))), dtype=np.float64)
        if scores.shape != (len(completions),):
            raise GoodhartError(
                f"gold reward {self.gold_name} returned shape {scores.shape} for {len(completions)} completions"
            )
        bad = np.flatnonzero(~np.isfinite(scores))
        if bad.size:
            rows = ", ".join(str(i) for i in bad[:10])
            raise GoodhartError(f"gold reward {self.gold_name} returned NaN/inf for rows {rows} (of {len(scores)})")
        return scores


def read_prompt_file(path: str | Path, field: str = "prompt") -> list[str]:
    """Prompts from a JSONL file (one object per line with `field`); blank prompts are skipped."""
    prompts = []
    for lineno, row in iter_jsonl(path, "prompts file"):
        if field not in row:
            raise GoodhartError(f"{path}:{lineno}: expected an object with a '{field}' field")
        if isinstance(row[field], str) and row[field].strip():
            prompts.append(row[field])
    if not prompts:
        raise GoodhartError(f"prompts file {path} has no usable rows (non-empty '{field}' strings)")
    return prompts


def proxy_factory(world: str, hf_cfg, backbone: str | None = None) -> Callable[[int], tuple]:
    """seed -> fresh (proxy RM, tokenizer): `backbone` if given, else the world's proxy backbone.

    Loads no policy, so RM-only commands stay fast.
    """
    from goodhart.worlds.hf import proxy_from_pretrained

    trust = bool(hf_cfg is not None and hf_cfg.trust_remote_code)
    if backbone is not None:
        return lambda seed: proxy_from_pretrained(backbone, seed, trust)
    if world == "smoke":
        from goodhart.worlds.smoke import make_proxy

        return make_proxy
    if world == "sentiment":
        from goodhart.worlds.sentiment import make_proxy

        return make_proxy
    return lambda seed: proxy_from_pretrained(hf_cfg.proxy_backbone, seed, trust)


def load_world(cfg) -> World:
    """Build the world named by cfg.world (a RunConfig)."""
    if cfg.world == "smoke":
        from goodhart.worlds.smoke import smoke_world

        return smoke_world(seed=cfg.seed)
    if cfg.world == "sentiment":
        from goodhart.worlds.sentiment import sentiment_world

        return sentiment_world()
    from goodhart.worlds.hf import hf_world

    return hf_world(cfg.hf)
