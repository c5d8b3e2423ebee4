"""Preference data for RM training: from a file/dataset of comparisons, or from a world's samples."""

from pathlib import Path

import numpy as np

from goodhart.errors import GoodhartError
from goodhart.reward.labels import make_pairs
from goodhart.reward.train import Comparisons
from goodhart.runs import iter_jsonl

FIELDS = ("prompt", "chosen", "rejected")
VAL_PAIRS_MAX = 512


def _rows_from_file(path: Path) -> list[dict]:
    rows = []
    for lineno, row in iter_jsonl(path, "preference file"):
        missing = [k for k in FIELDS if not isinstance(row.get(k), str)]
        if missing:
            raise GoodhartError(f"{path}:{lineno}: preference row lacks string field(s) {', '.join(missing)}")
        rows.append(row)
    return rows


def read_preferences(source: str, split: str = "train") -> tuple[Comparisons, np.ndarray]:
    """Comparisons and their `flipped` flags (False where absent) from JSONL or a datasets name/path."""
    path = Path(source)
    if path.suffix in (".jsonl", ".json") or path.is_file():
        rows = _rows_from_file(path)
    else:
        from datasets import load_dataset

        try:
            ds = load_dataset(source, split=split)
        except (OSError, ValueError) as e:
            raise GoodhartError(f"could not load preference dataset {source!r}: {str(e).splitlines()[0]}") from None
        missing = [k for k in FIELDS if k not in ds.column_names]
        if missing:
            raise GoodhartError(f"preference dataset {source!r} lacks column(s) {', '.join(missing)}")
        rows = list(ds)
    if len(rows) < 4:
        raise GoodhartError(f"{source} has {len(rows)} usable preference rows; at least 4 are needed")
    data = Comparisons([r["prompt"] for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows])
    return data, np.array([bool(r.get("flipped", False)) for r in rows])


def split_file_preferences(data: Comparisons, flipped: np.ndarray, rm_cfg, seed: int):
    """Random validation split, subsample to max_pairs, then flip round(ρ·P) training labels."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data))
    n_val = max(1, int(round(rm_cfg.val_fraction * len(data))))
    val_idx, train_idx = order[:n_val], order[n_val:][: rm_cfg.max_pairs]
    train, flips = data.subset(train_idx), flipped[train_idx].copy()
    n_flip = int(round(rm_cfg.label_noise * len(train)))
    if n_flip:
        idx = rng.choice(len(train), size=n_flip, replace=False)
        for i in idx:
            train.chosen[i], train.rejected[i] = train.rejected[i], train.chosen[i]
        flips[idx] = ~flips[idx]
    return train, data.subset(val_idx), flips


def world_preferences(prompts: list[str], comps: np.ndarray, gold: np.ndarray, rm_cfg, seed: int):
    """Gold-labelled within-prompt comparisons; the last val_fraction of prompts give clean validation pairs.

    prompts: B raw prompts; comps, gold: (B, K). Returns (train, val, flipped flags of train).
    """
    n_val = max(1, int(round(rm_cfg.val_fraction * len(prompts))))
    n_fit = len(prompts) - n_val
    rng = np.random.default_rng(seed)
    fit = make_pairs(gold[:n_fit], rng, rm_cfg.max_pairs, rm_cfg.labels, rm_cfg.label_temperature, rm_cfg.label_noise)
    val = make_pairs(gold[n_fit:], rng, VAL_PAIRS_MAX)
    if len(fit) < 2 or len(val) < 1:
        raise GoodhartError("too few comparisons with distinct gold scores to train a reward model; "
                            "use more prompts or samples per prompt")
    return (pairs_to_comparisons(prompts[:n_fit], comps[:n_fit], fit),
            pairs_to_comparisons(prompts[n_fit:], comps[n_fit:], val), fit[:, 3].astype(bool))


def pairs_to_comparisons(prompts: list[str], comps: np.ndarray, pairs: np.ndarray) -> Comparisons:
    """Rows [prompt, chosen, rejected, …] of a pair table → text Comparisons."""
    return Comparisons([prompts[b] for b in pairs[:, 0]], list(comps[pairs[:, 0], pairs[:, 1]]),
                       list(comps[pairs[:, 0], pairs[:, 2]]))
