"""Trained proxies of `goodhart run`, cached on disk by content hash like the sample pools (sampling/pool.py).

A proxy is a pure function of its training data and settings on one machine, so a rerun need not train the same
family again (benchmarks/README.md has what it saves). The key covers
every input of train_proxies: the world's policy (the proxies start from its body), proxy backbone and gold,
the training prompts, completions and gold scores themselves, rm.*, the training settings, the seed, the
subset size and torch's version. A hit copies the saved checkpoint into the run and replays its training
log into metrics.jsonl, so a run writes the same files either way (tests/test_cli.py).
"""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from goodhart import dist
from goodhart.runs import CONFIG, RunDir, atomic_write_text, cache_dir, model_card

VERSION = 1  # bump when train_proxies changes what it trains from the same inputs


def _sha(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def data_digest(prompts: list[str], comps: np.ndarray, gold: np.ndarray) -> str:
    """The training data's hash: computed once per run, shared by every proxy of the family."""
    return _sha({"prompts": prompts, "completions": comps.tolist(), "gold_scores": gold.tolist()})


def proxy_key(world, cfg, training, data: str, size: int) -> str:
    """The cache key of one proxy: `data` is data_digest of its training data; `size` its subset."""
    return _sha({"version": VERSION, "world": world.name, "policy": world.policy_id, "proxy": world.proxy_name,
                 "gold": world.gold_name, "data": data, "rm": cfg.rm.model_dump(mode="json"),
                 "training": training.model_dump(mode="json"), "seed": cfg.seed, "size": size,
                 "torch": torch.__version__})[:20]


def cached_proxy_dir(world, key: str) -> Path:
    return cache_dir() / "proxies" / f"{world.name}-{key}"


def usable(cfg) -> bool:
    """The cache serves single-process runs with cfg.cache on (under torchrun each rank trains its share)."""
    return cfg.cache and not dist.active()


def load_cached(path: Path, run: RunDir, folder: str, name: str) -> tuple | None:
    """(model, tokenizer, stats) of a cached proxy, its checkpoint copied into run/folder and its training log
    replayed under proxy=name, its card rewritten for this run; None when `path` holds no complete entry."""
    from goodhart.reward.load import load_checkpoint

    meta = path / "training.json"
    if not meta.is_file():
        return None
    saved = json.loads(meta.read_text())
    model, tok = load_checkpoint(path / "checkpoint")
    if run.writer:
        tmp = Path(tempfile.mkdtemp(dir=run.path, prefix=f".{folder}."))
        shutil.copytree(path / "checkpoint", tmp, dirs_exist_ok=True)
        # the model card names this run's config, not the run that trained it
        (tmp / "README.md").write_text(model_card("reward model", model, saved["card"], run.path / CONFIG),
                                       encoding="utf-8")
        os.replace(tmp, run.path / folder)
        for row in saved["log"]:
            run.log_metrics(proxy=name, **row)
    return model, tok, saved["stats"]


def store(path: Path, checkpoint: Path, stats: dict, log: list[dict], card: dict) -> None:
    """Copy a freshly saved proxy checkpoint and its training record into the cache (atomically: a
    half-written entry is never read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    shutil.copytree(checkpoint, tmp / "checkpoint")
    atomic_write_text(tmp / "training.json", json.dumps({"stats": stats, "log": log, "card": card}, default=float))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
