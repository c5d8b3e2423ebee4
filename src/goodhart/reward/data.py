"""Preference data for RM training: from a file/dataset of comparisons, or from a world's samples."""

from pathlib import Path

import numpy as np

from goodhart.errors import GoodhartError
from goodhart.reward.labels import make_pairs
from goodhart.reward.train import Comparisons
from goodhart.runs import iter_jsonl

FIELDS = ("prompt", "chosen", "rejected")
VAL_PAIRS_MAX = 512
MAX_TEXT_CHARS = 100_000  # a prompt or completion longer than this is refused (RMs see ≤ max_length tokens)


def _text(messages) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def _is_messages(value) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and {"role", "content"} <= m.keys() for m in value)


def normalise_preference(row: dict) -> dict | None:
    """One preference row in any TRL format → {prompt, chosen, rejected[, flipped]} strings, or None.

    Standard: string prompt / chosen / rejected. Conversational: `chosen` / `rejected` are message
    lists ({role, content}); the prompt is the explicit `prompt` messages, or else the messages the two
    share before they differ (TRL's implicit prompt); the completion is the rest, as "role: content" lines.
    """
    c, r = row.get("chosen"), row.get("rejected")
    if all(isinstance(row.get(k), str) for k in FIELDS):
        return row
    if isinstance(c, str) and isinstance(r, str) and "prompt" not in row:
        return row | _implicit_text_prompt(c, r)
    if not (_is_messages(c) and _is_messages(r)):
        return None
    prompt = row.get("prompt")
    if _is_messages(prompt):
        return row | {"prompt": _text(prompt), "chosen": _text(c), "rejected": _text(r)}
    if prompt is not None and not isinstance(prompt, str):
        return None
    k = 0
    while k < min(len(c), len(r)) - 1 and c[k] == r[k]:
        k += 1
    head = _text(c[:k]) if prompt is None else prompt
    return row | {"prompt": head, "chosen": _text(c[k:]), "rejected": _text(r[k:])}


def _implicit_text_prompt(chosen: str, rejected: str) -> dict:
    """TRL's implicit prompt for string rows: the shared prefix of chosen and rejected (as trl's
    extract_prompt: a space just before the first difference goes to the completions)."""
    idx = 0
    while idx < min(len(chosen), len(rejected)) and chosen[idx] == rejected[idx]:
        idx += 1
    if 0 < idx and chosen[idx - 1] == " ":
        idx -= 1
    return {"prompt": chosen[:idx], "chosen": chosen[idx:], "rejected": rejected[idx:]}


def check_preference(row: dict, where: str) -> None:
    """Refuse a row that cannot teach a preference (chosen == rejected) or is unboundedly long; `where`
    names it (file:line or dataset row)."""
    if row["chosen"] == row["rejected"]:
        raise GoodhartError(f"{where}: chosen and rejected are the same text; remove the row (it carries no "
                            "preference)")
    long = [k for k in FIELDS if len(row[k]) > MAX_TEXT_CHARS]
    if long:
        raise GoodhartError(f"{where}: {', '.join(long)} longer than {MAX_TEXT_CHARS:,} characters")


def _rows_from_file(path: Path) -> list[dict]:
    rows = []
    for lineno, row in iter_jsonl(path, "preference file"):
        norm = normalise_preference(row)
        if norm is None:
            missing = [k for k in FIELDS if not isinstance(row.get(k), str)]
            raise GoodhartError(f"{path}:{lineno}: preference row lacks string field(s) {', '.join(missing)} "
                                "(or conversational chosen/rejected message lists)")
        check_preference(norm, f"{path}:{lineno}")
        rows.append(norm)
    return rows


def read_preferences(source: str, split: str = "train") -> tuple[Comparisons, np.ndarray]:
    """Comparisons and their `flipped` flags (False where absent) from JSONL, Parquet or a datasets
    name/path, in TRL's standard (prompt/chosen/rejected strings) or conversational (message lists) format."""
    path = Path(source)
    if path.suffix in (".jsonl", ".json") or (path.is_file() and path.suffix != ".parquet"):
        rows = _rows_from_file(path)
    else:
        from datasets import load_dataset

        try:
            if path.suffix == ".parquet":
                if not path.is_file():
                    raise GoodhartError(f"preference file {path} does not exist")
                ds = load_dataset("parquet", data_files=str(path), split="train")
            else:
                ds = load_dataset(source, split=split)
        except (OSError, ValueError) as e:
            raise GoodhartError(f"could not load preference dataset {source!r}: {str(e).splitlines()[0]}") from None
        missing = [k for k in ("chosen", "rejected") if k not in ds.column_names]
        if missing:
            raise GoodhartError(f"preference dataset {source!r} lacks column(s) {', '.join(missing)}")
        rows = [normalise_preference(r) for r in ds]
        bad = [i for i, r in enumerate(rows) if r is None]
        if bad:
            raise GoodhartError(f"preference dataset {source!r}: rows {bad[:5]} are neither prompt/chosen/rejected "
                                "strings nor conversational message lists")
        for i, r in enumerate(rows):
            check_preference(r, f"preference dataset {source!r} row {i}")
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
