"""The lab world: Gao et al. (2023)'s design with models small enough that Gao-scale optimisation pressure
(Best-of-16,384, a thousand RL steps) costs minutes on a CPU.

- Policy: a Llama-architecture causal LM of LabSpec's size, pretrained here on ~2.7 MB of English prose
  (worlds/lab_corpus: Wikipedia articles and news paragraphs read from the gensim wheel) with its own
  byte-level BPE vocabulary. Prompts are the first words of sentences of paragraphs it never trained on.
- Judge (the "human labeller"): VADER's compound sentiment of the completion minus its repetition (the share
  of its words that repeat an earlier word) minus its share of unknown words (not seen twice in the pretraining
  text): a reader who wants positive text in real words. A few-million-parameter policy writes many non-words,
  so fluency is most of what separates its samples; a proxy that learned a little of it has junk to over-reward.
- Gold: a reward model (LlamaForSequenceClassification: the pretrained body, a new score head), fine-tuned with
  the Bradley–Terry loss on judge-labelled within-prompt comparisons of policy samples for prompts of its own
  (no proxy sees them); unbounded score, and the largest model of the world.
- Proxies: the same pretrained body cut to a smaller size (worlds/family.shrink cuts further for a study's
  RM sizes), with a new score head, trained by the reward floor on gold-labelled comparisons.

A policy-size variant (LabSpec.shares, e.g. lab-small) pretrains only its own policy, of another size, on the
same text with the shared world's tokenizer, and takes that world's gold, proxy backbone and prompts: Gao et
al.'s policy-size comparison (the same gold and the same RM family, another policy).

Built once on first use and cached in $GOODHART_CACHE/lab-v1-<name>-<hash>/ (base/: the policy; gold-<hash>/: the
gold, keyed by the judge too; a killed build resumes from the finished step; the gold's samples are a content-cached pool); `goodhart doctor` shows it.
"""

import copy
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from goodhart.progress import console, progress_bar
from goodhart.runs import atomic_write_text, cache_dir
from goodhart.worlds.base import World, read_prompt_file
from goodhart.worlds.gao import agreement, all_pairs
from goodhart.worlds.lab_corpus import Judge, bucket, known_words, paragraphs, prompt_sets, split_of
from goodhart.worlds.lab_pretrain import pretrain

VERSION = "lab-v1"


@dataclass(frozen=True)
class LabSpec:
    """Everything that defines a lab world (its cache key)."""

    vocab: int = 4096
    layers: int = 6
    hidden: int = 128
    intermediate: int = 384
    head_dim: int = 16
    context: int = 64  # pretraining sequence length; the policy holds 2× this many positions
    epochs: float = 2.0  # passes over the pretraining tokens
    batch: int = 32
    lr: float = 3e-3
    corpus_share: int = 100  # percent of the pretraining paragraphs used (the tiny variant uses a few)
    proxy_layers: int = 3  # the proxies' backbone: the policy's body cut to this size
    proxy_hidden: int = 96
    proxy_intermediate: int = 256
    gold_prompts: int = 256
    gold_samples: int = 16
    # more samples per gold prompt drawn with a repetition penalty below 1 (which favours repeating tokens): the
    # degenerate text an optimiser finds, shown to the gold and to no proxy (samples per penalty, the penalties)
    gold_repeat_samples: int = 4
    gold_repeat_penalties: tuple[float, ...] = (0.7, 0.5, 0.3)
    gold_pairs: int = 20_000
    gold_lr: float = 1e-3
    gold_batch: int = 32
    max_new_tokens: int = 24
    seed: int = 0
    # a policy-size variant: the world whose tokenizer, gold and proxy backbone this one shares (None: its own);
    # the gold and proxy fields above are then that world's, not this spec's
    shares: str | None = None


TINY = LabSpec(vocab=512, layers=2, hidden=32, intermediate=64, epochs=1.0, batch=16, corpus_share=3, gold_lr=3e-3,
               proxy_layers=1, proxy_hidden=16, proxy_intermediate=32, gold_prompts=40, gold_samples=8,
               gold_repeat_samples=2, gold_pairs=1200, max_new_tokens=12)
# the smaller policy of Gao's policy-size axis: 3 × 96 × 256 (0.33M non-embedding parameters, 4× fewer than lab's)
SMALL = replace(LabSpec(), layers=3, hidden=96, intermediate=256, shares="lab")
SPECS = {"lab": LabSpec(), "lab-tiny": TINY, "lab-small": SMALL,
         "lab-tiny-small": replace(TINY, layers=1, intermediate=64, shares="lab-tiny")}  # lab-small at test size


POLICY_FIELDS = ("vocab", "layers", "hidden", "intermediate", "head_dim", "context", "epochs", "batch", "lr",
                 "corpus_share", "seed", "shares")  # what the pretrained policy depends on (the rest: the gold)


def spec_key(spec: LabSpec, fields=None) -> str:
    # a field left at None is not part of the key, so an optional field added later keeps existing caches
    values = {k: v for k, v in asdict(spec).items() if (fields is None or k in fields) and v is not None}
    return hashlib.sha256(json.dumps({"version": VERSION, "judge": Judge.version} | values if fields is None else
                                     {"version": VERSION} | values, sort_keys=True).encode()).hexdigest()[:12]


def world_dir(name: str) -> Path:
    """The world's cache: base/ (policy, keyed by POLICY_FIELDS) and gold-<key of the whole spec and judge>/."""
    return cache_dir() / f"{VERSION}-{name}-{spec_key(SPECS[name], POLICY_FIELDS)}"


def gold_dir(name: str) -> Path:
    return world_dir(name) / f"gold-{spec_key(SPECS[name])}"


def _atomic_dir(target: Path, write) -> None:
    """Run write(tmp) into a temp dir beside `target`, then move it into place (a killed build leaves no half)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    write(tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def proxy_from(policy: Path, spec: LabSpec, seed: int, layers: int, hidden: int, intermediate: int):
    """(a sequence-classification model on the pretrained body cut to this size, new score head seeded by
    `seed`, the RM tokenizer). The policy's output head is not loaded (transformers reports it as unused)."""
    from transformers import AutoTokenizer, LlamaForSequenceClassification
    from transformers.utils import logging

    from goodhart.worlds.family import shrink

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        torch.manual_seed(seed)
        model = LlamaForSequenceClassification.from_pretrained(policy, num_labels=1, dtype=torch.float32)
    finally:
        logging.set_verbosity(level)
    cut = (layers, hidden, intermediate)
    if cut != (spec.layers, spec.hidden, spec.intermediate):
        model = shrink(model, layers=layers, hidden=hidden, intermediate=intermediate)
    tok = AutoTokenizer.from_pretrained(policy.parent / "rm_tokenizer")
    return model, tok


def bt_finetune(model, tok, prompts: list[str], comps: np.ndarray, pairs: np.ndarray, spec: LabSpec) -> list[float]:
    """Bradley–Terry fine-tuning of the gold (SPEC §5): loss −log σ(r(chosen) − r(rejected)), one pass over
    `pairs` (P, 3) [prompt, chosen, rejected] in shuffled batches, AdamW with linear decay. Written here and not
    with reward/ (a floor above worlds/): the gold is part of the world, built before any proxy exists."""
    from goodhart.scoring import encode_pairs, reward_from_logits

    order = np.random.default_rng(spec.seed).permutation(len(pairs))
    steps = math.ceil(len(order) / spec.gold_batch)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.gold_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * (1 - s / steps))
    model.train()
    losses = []
    with progress_bar(steps, "lab world: train the gold RM") as advance:
        for s in range(steps):
            b = pairs[order[s * spec.gold_batch:(s + 1) * spec.gold_batch]]
            texts = [prompts[i] for i in b[:, 0]] * 2
            enc = encode_pairs(tok, texts, list(comps[b[:, 0], b[:, 1]]) + list(comps[b[:, 0], b[:, 2]]), 4 * spec.context)
            r = reward_from_logits(model(**enc).logits)
            loss = torch.nn.functional.softplus(r[len(b):] - r[: len(b)]).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            advance()
    model.eval()
    return losses


@torch.no_grad()
def repeat_samples(world: World, prompts: list[str], spec: LabSpec) -> np.ndarray:
    """spec.gold_repeat_samples completions per prompt and penalty of spec.gold_repeat_penalties, drawn by
    `generate` with that repetition penalty (< 1 multiplies the logits of tokens already in the text up: loops
    of words and phrases, what RL against a proxy drifts into). Seeded per batch: (B, samples × penalties) str.
    Drawn with transformers' generate, not the fast engine: it has the repetition processor, and these are few."""
    tok, k, starts = copy.copy(world.tokenizer), spec.gold_repeat_samples, range(0, len(prompts), 64)
    tok.padding_side = "left"
    rows: list[list[str]] = [[] for _ in prompts]
    with progress_bar(len(spec.gold_repeat_penalties) * len(starts), "lab world: sample repetition-favoured data") as advance:
        for j, penalty in enumerate(spec.gold_repeat_penalties):
            for at in starts:
                torch.manual_seed(spec.seed * 1_000_003 + 7_919 * j + at)
                enc = tok([world.render(p) for p in prompts[at: at + 64]], return_tensors="pt", padding=True,
                          add_special_tokens=world.add_special_tokens)
                out = world.policy.generate(**enc, do_sample=True, top_k=0, max_new_tokens=spec.max_new_tokens,
                                            repetition_penalty=penalty, num_return_sequences=k, pad_token_id=tok.pad_token_id)
                texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                for i, text in enumerate(texts):
                    rows[at + i // k].append(text)
                advance()
    return np.array(rows, dtype=object)


def build_gold(world: World, spec: LabSpec, gold_prompts: list[str], target: Path) -> dict:
    """Sample the policy on the gold's prompts (a content-cached pool) and, with repetition favoured, more
    (repeat_samples), label all by the judge, fine-tune the full-size RM on spec.gold_pairs within-prompt
    comparisons of the first 80% of prompts, measure its agreement with the judge on the other 20% (on pairs of
    plain samples, what the proxies are trained on, and on all pairs); write the checkpoint and facts.json into
    `target` atomically. Returns the facts."""
    from goodhart.config import SamplingConfig
    from goodhart.sampling.pool import policy_pool
    from goodhart.scoring import score_pairs

    start = time.perf_counter()
    sampling = SamplingConfig(max_new_tokens=spec.max_new_tokens, batch_size=512)
    plain, plain_labels = policy_pool(world, gold_prompts, spec.gold_samples, sampling, spec.seed + 7_919,
                                      "lab world: sample the gold's data")
    looped = repeat_samples(world, gold_prompts, spec) if spec.gold_repeat_samples else plain[:, :0]
    comps = np.concatenate([plain, looped], axis=1)
    labels = np.concatenate([plain_labels, np.asarray(world.gold_scores(
        [p for p in gold_prompts for _ in range(looped.shape[1])], list(looped.ravel()))).reshape(looped.shape)], 1)
    n_val = max(2, len(gold_prompts) // 5)
    fit, val, val_all = all_pairs(labels[:-n_val]), all_pairs(plain_labels[-n_val:]), all_pairs(labels[-n_val:])
    fit = fit[np.random.default_rng(spec.seed).permutation(len(fit))[: spec.gold_pairs]]
    policy = Path(world.policy.name_or_path)
    model, tok = proxy_from(policy, spec, spec.seed, spec.layers, spec.hidden, spec.intermediate)
    t = time.perf_counter()
    losses = bt_finetune(model, tok, gold_prompts, comps, fit, spec)
    train_s = time.perf_counter() - t
    flat = [p for p in gold_prompts for _ in range(comps.shape[1])]
    t = time.perf_counter()
    score = score_pairs(model, tok, flat, list(comps.ravel()), batch_size=256, max_length=4 * spec.context
                        ).reshape(comps.shape)
    facts = {"judge": "VADER compound − repetition − share of unknown words (of the completion)",
             "gold_prompts": len(gold_prompts),
             "samples_per_prompt": spec.gold_samples, "train_pairs": len(fit), "val_pairs": len(val),
             "train_loss_first": float(np.mean(losses[:10])), "train_loss_last": float(np.mean(losses[-10:])),
             "repeat_samples_per_prompt": looped.shape[1], "repeat_penalties": list(spec.gold_repeat_penalties),
             "train_agreement": agreement(score[:-n_val], fit), "heldout_agreement": agreement(score[-n_val:], val),
             "heldout_agreement_all": agreement(score[-n_val:], val_all), "val_pairs_all": len(val_all),
             "gold_params": sum(p.numel() for p in model.parameters()),
             "gold_train_s": train_s, "score_s_per_1000": 1000 * (time.perf_counter() - t) / comps.size,
             "gold_build_s": time.perf_counter() - start}

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_text(tmp / "facts.json", json.dumps(facts, indent=1))

    _atomic_dir(target, write)
    return facts


def corpus_splits(spec: LabSpec) -> dict[str, list[str]]:
    """pretrain / heldout (for the policy's loss) / world / gold paragraphs; the tiny variant keeps a share."""
    out = {"pretrain": [], "heldout": [], "world": [], "gold": []}
    for text in paragraphs():
        split = split_of(text)
        if split == "pretrain" and bucket(text[::-1]) < spec.corpus_share:
            out["heldout" if bucket(text[::-1]) % 20 == 0 else "pretrain"].append(text)
        elif split != "pretrain":
            out[split].append(text)
    return out


def build_policy(spec: LabSpec, target: Path, tokenizers: tuple | None = None) -> dict:
    """Pretrain the policy and write it (model, tokenizer, RM tokenizer, facts) into `target` atomically."""
    splits = corpus_splits(spec)
    model, tok, rm_tok, facts = pretrain(spec, splits["pretrain"], splits["heldout"], tokenizers)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp / "policy")
        tok.save_pretrained(tmp / "policy")
        rm_tok.save_pretrained(tmp / "rm_tokenizer")
        atomic_write_text(tmp / "facts.json", json.dumps(facts, indent=1))

    _atomic_dir(target, write)
    return facts


def cached_policy(root: Path, spec: LabSpec, announce: str, tokenizers=None) -> Path:
    """The world's pretrained policy directory, pretrained first (announced, then its loss) if not cached;
    `tokenizers`: a callable giving a shared world's (policy, RM) tokenizers, else the world trains its own."""
    if not (root / "base" / "policy" / "model.safetensors").is_file():
        console.print(announce)
        facts = build_policy(spec, root / "base", tokenizers() if tokenizers else None)
        console.print(f"policy: held-out next-token loss {facts['heldout_loss']:.2f} nats (random init "
                      f"{facts['heldout_loss_init']:.2f}), {facts['pretrain_s']:.0f} s")
    return root / "base" / "policy"


def lab_world(name: str = "lab") -> World:
    """The lab world `name` (lab, or lab-tiny for tests), built on first use and cached."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    spec, root = SPECS[name], world_dir(name)
    if spec.shares:
        return _sized_variant(name, spec, root)
    policy_path = cached_policy(root, spec, f"{name} world: pretraining its policy once (cached in {root})")
    tok = AutoTokenizer.from_pretrained(policy_path)
    policy = LlamaForCausalLM.from_pretrained(policy_path, dtype=torch.float32).eval()
    splits = corpus_splits(spec)
    prompts, gold_prompts = prompt_sets(splits)
    gold_prompts = gold_prompts[: spec.gold_prompts]
    judge = Judge(known_words(splits["pretrain"]))
    layers, hidden, ffn = spec.proxy_layers, spec.proxy_hidden, spec.proxy_intermediate
    world = World(
        name=name, policy_id=f"{name}-{spec_key(spec)}", policy=policy, tokenizer=tok, prompts=prompts,
        render=lambda p: f"[BOS]{p}", add_special_tokens=False, gold=judge, gold_name=Judge.version,
        make_proxy=lambda seed: proxy_from(policy_path, spec, seed, layers, hidden, ffn),
        proxy_name=f"lab-lm {layers}x{hidden}",
        ood_prompts=read_prompt_file(resources.files("goodhart.worlds") / "data" / "movie_prompts.jsonl"))
    gold_path = gold_dir(name)
    if not (gold_path / "model.safetensors").is_file():
        looped = spec.gold_repeat_samples * len(spec.gold_repeat_penalties)
        console.print(f"{name} world: training its gold RM once on judge labels of {len(gold_prompts)} prompts × "
                      f"({spec.gold_samples} samples + {looped} with repetition favoured)")
        facts = build_gold(world, spec, gold_prompts, gold_path)
        console.print(f"gold RM: held-out agreement with the judge {facts['heldout_agreement']:.3f} on "
                      f"{facts['val_pairs']} pairs, built in {facts['gold_build_s']:.0f} s")
    gold = LearnedRM(gold_path, 4 * spec.context)
    gold_id = f"{root.name}/{gold_path.name}"
    return replace(world, gold=gold, gold_name=f"lab-gold:{gold_id}", gold_id=gold_id)


def _sized_variant(name: str, spec: LabSpec, root: Path) -> World:
    """A policy-size variant of the world spec.shares: its own pretrained policy (same text, same tokenizer),
    that world's prompts, gold, proxy backbone and OOD prompts."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    shared = lab_world(spec.shares)  # built first: its tokenizer, gold and proxy backbone
    shared_base = world_dir(spec.shares) / "base"
    policy_path = cached_policy(root, spec, f"{name} world: pretraining its {spec.layers} × {spec.hidden} policy once, "
                                f"with the {spec.shares} world's tokenizer, gold and proxies (cached in {root})",
                                lambda: (AutoTokenizer.from_pretrained(shared_base / "policy"),
                                         AutoTokenizer.from_pretrained(shared_base / "rm_tokenizer")))
    policy = LlamaForCausalLM.from_pretrained(policy_path, dtype=torch.float32).eval()
    return replace(shared, name=name, policy_id=f"{name}-{spec_key(spec)}", policy=policy,
                   tokenizer=AutoTokenizer.from_pretrained(policy_path))


class LearnedRM:
    """A sequence-classification checkpoint as a gold callable (loaded on first call)."""

    def __init__(self, directory: Path, max_length: int):
        self.directory, self.max_length, self._model = directory, max_length, None

    def __call__(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        from transformers import AutoTokenizer, LlamaForSequenceClassification

        from goodhart.scoring import score_pairs

        if self._model is None:
            self._model = LlamaForSequenceClassification.from_pretrained(self.directory, dtype=torch.float32).eval()
            self._tok = AutoTokenizer.from_pretrained(self.directory)
        return score_pairs(self._model, self._tok, [p for p, _ in pairs], [c for _, c in pairs], batch_size=256,
                           max_length=self.max_length)


def lab_facts(name: str = "lab") -> dict | None:
    """The cached world's facts (policy and gold; None when not built yet), for `goodhart doctor`."""
    root = world_dir(name)
    parts = [root / "base" / "facts.json", gold_dir(SPECS[name].shares or name) / "facts.json"]
    if not parts[0].is_file():
        return None
    return {k: v for p in parts if p.is_file() for k, v in json.loads(p.read_text()).items()}
