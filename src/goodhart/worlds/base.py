"""The World record and the loader that builds one from a RunConfig."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from goodhart.errors import GoodhartError
from goodhart.runs import append_jsonl, cache_dir, env_rank, iter_jsonl

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
    gold_id: str | None = None  # identity of the gold function for its score cache (default: gold_name)
    gold_cache: bool = True  # remember gold scores by (prompt, completion) hash across runs
    gold_calls: int = 0  # completions actually scored by gold in this process (cache misses)

    def gold_scores(self, prompts: list[str], completions: list[str]) -> np.ndarray:
        """Gold scores as float64 (B,), refusing NaN/inf with the offending rows named.

        Scores are cached on disk by hash of (gold identity, prompt, completion): repeated studies
        never re-score a completion (an LLM judge is the slow part of a study)."""
        pairs = list(zip(prompts, completions, strict=True))
        cache = GoldCache(self.gold_id or self.gold_name) if self.gold_cache else None
        known = cache.lookup(pairs) if cache else {}
        todo = [i for i in range(len(pairs)) if i not in known]
        fresh = np.asarray(self.gold([pairs[i] for i in todo]), dtype=np.float64) if todo else np.zeros(0)
        if fresh.shape != (len(todo),):
            raise GoodhartError(f"gold reward {self.gold_name} returned shape {fresh.shape} for {len(todo)} completions")
        bad = np.flatnonzero(~np.isfinite(fresh))
        if bad.size:
            rows = ", ".join(str(todo[i]) for i in bad[:10])
            raise GoodhartError(f"gold reward {self.gold_name} returned NaN/inf for rows {rows} (of {len(pairs)})")
        self.gold_calls += len(todo)
        if cache and todo:
            cache.add([pairs[i] for i in todo], fresh)
        scores = np.empty(len(pairs))
        scores[todo] = fresh
        for i, v in known.items():
            scores[i] = v
        return scores


class GoldCache:
    """Append-only JSONL of {key: sha256(gold id, prompt, completion), gold} in $GOODHART_CACHE/gold.

    Under torchrun rank R > 0 appends to its own `NAME.rankR.jsonl` (no two writers share a file);
    lookups read them all."""

    def __init__(self, gold_id: str):
        name = hashlib.sha256(gold_id.encode()).hexdigest()[:20]
        rank = env_rank()
        self.path = cache_dir() / "gold" / (f"{name}.jsonl" if rank == 0 else f"{name}.rank{rank}.jsonl")
        self.files = (cache_dir() / "gold", f"{name}.*jsonl")
        self.gold_id = gold_id

    def _key(self, pair: tuple[str, str]) -> str:
        return hashlib.sha256("\x00".join((self.gold_id, *pair)).encode()).hexdigest()[:32]

    def _table(self) -> dict[str, float]:
        if self.path in _TABLES:  # read once per process; add() keeps it current
            return _TABLES[self.path]
        table = _TABLES.setdefault(self.path, {})
        folder, pattern = self.files
        for path in sorted(folder.glob(pattern)) if folder.is_dir() else []:
            for line in path.read_text(encoding="utf-8").splitlines():
                try:  # a line torn by a kill is skipped (it is rescored and appended again)
                    row = json.loads(line)
                    table[row["k"]] = float(row["g"])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
        return table

    def lookup(self, pairs: list[tuple[str, str]]) -> dict[int, float]:
        table = self._table()
        return {i: table[k] for i, k in enumerate(map(self._key, pairs)) if k in table}

    def add(self, pairs: list[tuple[str, str]], scores: np.ndarray) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"k": self._key(p), "g": float(g)} for p, g in zip(pairs, scores, strict=True)]
        append_jsonl(self.path, rows)
        self._table().update({r["k"]: r["g"] for r in rows})


_TABLES: dict[Path, dict[str, float]] = {}


MAX_PROMPT_CHARS = 20_000  # ~5k tokens: beyond any policy context this tool samples from


def read_prompt_file(path: str | Path, field: str = "prompt") -> list[str]:
    """Prompts from a JSONL file (one object per line with `field`); blank prompts are skipped."""
    prompts = []
    for lineno, row in iter_jsonl(path, "prompts file"):
        if field not in row:
            raise GoodhartError(f"{path}:{lineno}: expected an object with a '{field}' field")
        if isinstance(row[field], str) and len(row[field]) > MAX_PROMPT_CHARS:
            raise GoodhartError(f"{path}:{lineno}: prompt of {len(row[field]):,} characters; the limit is "
                                f"{MAX_PROMPT_CHARS:,} (the policy sees a bounded context)")
        if isinstance(row[field], str) and row[field].strip():
            prompts.append(row[field])
    if not prompts:
        raise GoodhartError(f"prompts file {path} has no usable rows (non-empty '{field}' strings)")
    return prompts
