"""The gao world: Gao et al. (2023)'s design in miniature, with a *learned* gold reward model.

Policy and task as in `sentiment` (SmolLM2-135M-Instruct continues movie-review openings). The gold is
not a word list but a reward model with an unbounded score: a linear Bradley–Terry head on the
mean-pooled hidden states of the first GOLD_LAYERS decoder layers of SmolLM2-135M (28M non-embedding
parameters, against 11M in the proxies' largest backbone, MiniLM-L6), trained once on VADER-labelled
within-prompt comparisons of policy samples for GOLD_PROMPTS movie openings that the world's prompt list
never contains: the proxies, trained on gold labels of the world's prompts, never see the gold's data.
VADER plays the human labellers of the paper; the learned RM is the gold that the study measures by.

Built on first use (the policy samples go through the content-cached pools, so a killed build resumes
after its sampling) and cached in $GOODHART_CACHE/gao-gold-v1-<hash>/ with its facts (held-out agreement
with VADER, training time, scoring cost); `goodhart doctor` shows it.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from goodhart.pairs import within_prompt_pairs
from goodhart.progress import console
from goodhart.runs import atomic_write_text, cache_dir

GOLD_LAYERS = 8  # decoder layers of SmolLM2-135M under the gold head
GOLD_PROMPTS = 100  # movie openings reserved for the gold (the last ones of the shipped list)
GOLD_SAMPLES = 8  # policy samples per gold prompt
GOLD_SEED = 7_919
GOLD_VAL_FRACTION = 0.2  # gold prompts held out to measure the gold's agreement with its labels
GOLD_L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)  # ridge penalties tried by 4-fold CV over the gold's training prompts
VERSION = "gao-gold-v1"


def pooled_features(model, tokenizer, texts: list[str], batch_size: int = 64, max_length: int = 64) -> np.ndarray:
    """(len(texts), hidden) mean of the last hidden state over each text's tokens (fp32, no grad)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i: i + batch_size], return_tensors="pt", padding=True, truncation=True,
                            max_length=max_length, add_special_tokens=False)
            if enc["input_ids"].shape[1] == 0:  # every text empty
                out.append(np.zeros((len(texts[i: i + batch_size]), model.config.hidden_size)))
                continue
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"][..., None].to(hidden.dtype)
            out.append((hidden * mask).sum(1).div(mask.sum(1).clamp(min=1)).numpy())
    return np.concatenate(out).astype(np.float64)


def fit_bt_head(feats: np.ndarray, pairs: np.ndarray, l2: float = 1e-2, steps: int = 200):
    """Linear Bradley–Terry head (SPEC §5) on standardised features: min mean −log σ(w·(x_chosen − x_rejected)) + l2·|w|².

    feats: (B, K, H); pairs: (P, ≥3) rows [prompt, chosen, rejected]. Full-batch L-BFGS (convex, so the
    result does not depend on an initialisation). Returns (w, mean, std)."""
    flat = feats.reshape(-1, feats.shape[-1])
    mean, std = flat.mean(0), flat.std(0) + 1e-6
    z = torch.tensor((feats - mean) / std)
    diff = z[pairs[:, 0], pairs[:, 1]] - z[pairs[:, 0], pairs[:, 2]]
    w = torch.zeros(feats.shape[-1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-(diff @ w)).mean() + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), mean, std


def first_layers(backbone: Path, layers: int):
    """(the base model of a causal-LM checkpoint cut to its first `layers` layers, its tokenizer padding on
    the right for pooling). The weights of the other layers are not loaded; transformers' report of them
    as unexpected is silenced."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        model = AutoModel.from_pretrained(backbone, num_hidden_layers=layers, dtype=torch.float32).eval()
    finally:
        logging.set_verbosity(level)
    tok = AutoTokenizer.from_pretrained(backbone)
    tok.padding_side = "right"
    return model, tok


class LearnedGold:
    """The gold: score(completion) = standardised pooled features · w; unbounded. Loads lazily."""

    def __init__(self, directory: Path, backbone: Path, layers: int = GOLD_LAYERS):
        self.directory, self.backbone, self.layers = directory, backbone, layers
        self._model = None

    def _load(self):
        if self._model is None:
            head = np.load(self.directory / "head.npz")
            self.w, self.mean, self.std = head["w"], head["mean"], head["std"]
            self._model, self._tok = first_layers(self.backbone, self.layers)
        return self._model, self._tok

    def __call__(self, pairs: list[tuple[str, str]]) -> list[float]:
        model, tok = self._load()
        feats = pooled_features(model, tok, [c for _, c in pairs])
        return list(((feats - self.mean) / self.std) @ self.w)


def all_pairs(labels: np.ndarray) -> np.ndarray:
    """Every within-prompt comparison with distinct labels, (P, 3) rows [prompt, chosen, rejected] (the
    gold uses them all; reward.make_pairs, above this floor, subsamples and flips for the proxies)."""
    b, a, c, diff = within_prompt_pairs(labels)
    keep = diff != 0
    b, a, c, wins = b[keep], a[keep], c[keep], diff[keep] > 0
    return np.stack([b, np.where(wins, a, c), np.where(wins, c, a)], axis=1)


def agreement(score: np.ndarray, pairs: np.ndarray) -> float:
    """Share of pairs [prompt, chosen, rejected] that `score` (B, K) ranks as labelled."""
    return float(np.mean(score[pairs[:, 0], pairs[:, 1]] > score[pairs[:, 0], pairs[:, 2]]))


def choose_l2(feats: np.ndarray, labels: np.ndarray, folds: int = 4) -> float:
    """The ridge penalty of GOLD_L2_GRID with the best mean agreement over `folds` folds of prompts
    (the held-out prompts of build_gold are not used to choose it)."""
    part = np.arange(len(labels)) % folds
    best = {}
    for l2 in GOLD_L2_GRID:
        scores = []
        for f in range(folds):
            w, mean, std = fit_bt_head(feats[part != f], all_pairs(labels[part != f]), l2)
            scores.append(agreement(((feats[part == f] - mean) / std) @ w, all_pairs(labels[part == f])))
        best[l2] = np.mean(scores)
    return max(best, key=best.get)


def gold_key(policy_id: str, prompts: list[str]) -> str:
    spec = {"version": VERSION, "policy": policy_id, "layers": GOLD_LAYERS, "prompts": prompts, "k": GOLD_SAMPLES,
            "seed": GOLD_SEED, "l2": GOLD_L2_GRID, "val": GOLD_VAL_FRACTION}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def build_gold(world, gold_prompts: list[str], backbone: Path, target: Path, sampling, layers: int = GOLD_LAYERS,
               samples: int = GOLD_SAMPLES) -> dict:
    """Sample the policy on the gold prompts (cached pool), label within-prompt pairs by world.gold (VADER),
    fit the head on the first (1 − GOLD_VAL_FRACTION) prompts, measure agreement on the rest; write
    head.npz and facts.json into `target` atomically. Returns the facts."""
    from goodhart.sampling.pool import policy_pool

    start = time.perf_counter()
    comps, labels = policy_pool(world, gold_prompts, samples, sampling, GOLD_SEED, "sample gold data")
    t_sample = time.perf_counter() - start
    model, tok = first_layers(backbone, layers)
    t = time.perf_counter()
    feats = pooled_features(model, tok, list(comps.ravel())).reshape(*comps.shape, -1)
    per_1000 = 1000 * (time.perf_counter() - t) / comps.size
    n_val = max(1, int(round(GOLD_VAL_FRACTION * len(gold_prompts))))
    fit_pairs, val_pairs = all_pairs(labels[:-n_val]), all_pairs(labels[-n_val:])
    l2 = choose_l2(feats[:-n_val], labels[:-n_val])
    w, mean, std = fit_bt_head(feats[:-n_val], fit_pairs, l2)
    score = ((feats - mean) / std) @ w

    facts = {"version": VERSION, "backbone": f"{Path(backbone).name}, first {layers} layers, mean-pooled, linear BT head",
             "labels": "VADER compound of the completion (within-prompt comparisons, ties dropped)",
             "gold_prompts": len(gold_prompts), "samples_per_prompt": samples,
             "train_pairs": len(fit_pairs), "val_pairs": len(val_pairs), "l2": l2,
             "train_agreement": agreement(score[:-n_val], fit_pairs),
             "heldout_agreement": agreement(score[-n_val:], val_pairs),
             "sample_s": t_sample, "build_s": time.perf_counter() - start, "score_s_per_1000": per_1000}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    np.savez(tmp / "head.npz", w=w, mean=mean, std=std)
    atomic_write_text(tmp / "facts.json", json.dumps(facts, indent=1))
    if target.exists():  # a half-written copy from an interrupted build
        shutil.rmtree(target)
    os.replace(tmp, target)
    return facts


def gold_dir(policy_id: str) -> Path:
    from goodhart.worlds.sentiment import movie_prompts

    return cache_dir() / f"{VERSION}-{gold_key(policy_id, split_prompts(movie_prompts())[1])}"


def split_prompts(prompts: list[str]) -> tuple[list[str], list[str]]:
    """(the world's prompts, the gold's prompts): the last GOLD_PROMPTS openings are the gold's alone."""
    return prompts[:-GOLD_PROMPTS], prompts[-GOLD_PROMPTS:]


def gao_world():
    from dataclasses import replace

    from goodhart.config import SamplingConfig
    from goodhart.worlds.sentiment import movie_prompts, policy_dir, sentiment_world

    base = sentiment_world()
    world_prompts, gold_prompts = split_prompts(movie_prompts())
    target = gold_dir(base.policy_id)
    if not (target / "head.npz").is_file():
        console.print(f"gao world: building the gold RM once ({GOLD_PROMPTS} prompts × {GOLD_SAMPLES} policy samples "
                      f"labelled by VADER; cached in {target})")
        facts = build_gold(replace(base, prompts=gold_prompts), gold_prompts, policy_dir(), target, SamplingConfig())
        console.print(f"gold RM: held-out agreement with VADER {facts['heldout_agreement']:.3f} on "
                      f"{facts['val_pairs']} pairs, built in {facts['build_s']:.0f} s")
    gold = LearnedGold(target, policy_dir())
    return replace(base, name="gao", prompts=world_prompts, gold=gold, gold_name=f"learned-gold:{target.name}",
                   gold_id=target.name)


def gold_facts() -> dict | None:
    """The cached gold's facts.json (None when not built yet); for `goodhart doctor`."""
    from goodhart.worlds.sentiment import POLICY_ID

    path = gold_dir(POLICY_ID) / "facts.json"
    return json.loads(path.read_text()) if path.is_file() else None
