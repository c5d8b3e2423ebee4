"""Load reward models from disk: a single checkpoint, a WARM checkpoint (also single), or an
ensemble directory (ensemble.json listing member checkpoints and the aggregation)."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from goodhart.errors import GoodhartError
from goodhart.reward.ensemble import METHODS, aggregate
from goodhart.scoring import score_pairs

ENSEMBLE_FILE = "ensemble.json"


def checkpoint_dir(path: str | Path) -> Path:
    """A checkpoint dir, or an `rm train` run dir (whose checkpoint is in model/)."""
    path = Path(path)
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if (path / "config.json").is_file():
        return path
    raise GoodhartError(f"{path} is not a reward-model checkpoint (no config.json) nor an `rm train` run directory")


def load_checkpoint(path: str | Path, trust_remote_code: bool = False):
    """(model, tokenizer) from a sequence-classification checkpoint saved with safetensors."""
    path = checkpoint_dir(path)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, use_safetensors=True,
                                                                   trust_remote_code=trust_remote_code)
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, SafetensorError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GoodhartError(f"could not load a reward model from {path}: {first[:200]}") from None
    if getattr(model.config, "goodhart_format", None) is None and trained_by_trl(path):
        # trl's RewardTrainer: prompt + completion + eos as one sequence (through the chat template when
        # it trained on conversations, which is what a tokenizer with a template implies)
        model.config.goodhart_format = "chat" if getattr(tok, "chat_template", None) else "concat"
    return model.eval(), tok


def trained_by_trl(path: Path) -> bool:
    """A checkpoint written by trl's RewardTrainer: its training_args.bin, or a model card tagged by trl."""
    card = path / "README.md"
    return (path / "training_args.bin").is_file() or (
        card.is_file() and "reward-trainer" in card.read_text(encoding="utf-8", errors="replace"))


@dataclass
class RewardModel:
    """M ≥ 1 members and how their scores combine (M = 1: a single RM or a WARM model)."""

    members: list  # [(model, tokenizer)]
    method: str = "mean"
    lam: float = 1.0
    name: str = "rm"
    proxy_format: str = "auto"  # pair | concat | chat for every member, or auto: each member as it was trained
    normalise: bool = False  # apply each member's stored goodhart_normalisation (shift, scale) if it has one

    def member_format(self, model, tokenizer) -> str:
        """How this member reads (prompt, completion) (scoring.encode_pairs). auto: the convention its
        checkpoint records (goodhart_format; trl checkpoints: concat), else its chat template if it has one,
        else a text pair."""
        has_template = getattr(tokenizer, "chat_template", None) is not None
        fmt = self.proxy_format
        if fmt == "auto":
            fmt = getattr(model.config, "goodhart_format", None) or ("chat" if has_template else "pair")
        if fmt == "chat" and not has_template:
            raise GoodhartError(f"reward model {self.name}: proxy_format chat but its tokenizer has no chat template")
        return fmt

    def member_scores(self, prompts: list[str], completions: list[str], max_length: int = 256) -> np.ndarray:
        """(M, B) scores of every member."""
        out = []
        for m, t in self.members:
            s = score_pairs(m, t, prompts, completions, max_length=max_length, fmt=self.member_format(m, t))
            norm = getattr(m.config, "goodhart_normalisation", None) if self.normalise else None
            out.append((s - norm["shift"]) / norm["scale"] if norm else s)
        return np.stack(out)

    def score(self, prompts: list[str], completions: list[str], max_length: int = 256) -> np.ndarray:
        """(B,) aggregated score (SPEC §6)."""
        return aggregate(self.member_scores(prompts, completions, max_length), self.method, self.lam)

    def to(self, device: torch.device) -> "RewardModel":
        for m, _ in self.members:
            m.to(device)
        return self


def write_ensemble(out: str | Path, members: list[str | Path], method: str = "mean", lam: float = 1.0) -> Path:
    """Write an ensemble directory: ensemble.json with absolute member checkpoint paths."""
    from goodhart.runs import atomic_write_text

    if method not in METHODS:
        raise GoodhartError(f"unknown aggregation {method!r}; choose one of {', '.join(METHODS)}")
    if len(members) < 2:
        raise GoodhartError("an ensemble needs at least 2 members")
    paths = [str(checkpoint_dir(m).resolve()) for m in members]
    out = Path(out)
    if (out / ENSEMBLE_FILE).exists():
        raise GoodhartError(f"{out} already holds an ensemble; choose another --out")
    atomic_write_text(out / ENSEMBLE_FILE, json.dumps({"members": paths, "method": method, "lam": lam}, indent=2))
    return out


def load_reward_model(path: str | Path, trust_remote_code: bool = False) -> RewardModel:
    """A RewardModel from a checkpoint dir, an `rm train` run dir, or an ensemble dir."""
    path = Path(path)
    manifest = path / ENSEMBLE_FILE
    if manifest.is_file():
        try:
            spec = json.loads(manifest.read_text())
            members, method, lam = spec["members"], spec.get("method", "mean"), float(spec.get("lam", 1.0))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise GoodhartError(f"{manifest} is not a valid ensemble file ({e})") from None
        return RewardModel([load_checkpoint(m, trust_remote_code) for m in members], method, lam, name=path.name)
    return RewardModel([load_checkpoint(path, trust_remote_code)], name=path.name)
