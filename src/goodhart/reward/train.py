"""Bradley–Terry reward-model training loop (SPEC §5).

Written by hand rather than with trl's RewardTrainer: tokenising once, length-bucketed batches,
dynamic padding and chosen+rejected in one forward pass make it faster on CPU
(benchmarks/rm_train.py prints the ratio), and it trains any sequence-classification model on
(prompt, completion) text pairs without a dataset round-trip.
"""

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from goodhart import dist
from goodhart.config import RMTraining
from goodhart.device import autocast, load_state
from goodhart.progress import console, progress_bar
from goodhart.reward.bt import bt_loss, centering_loss
from goodhart.runs import atomic_write_bytes
from goodhart.scoring import reward_from_logits, score_pairs


@dataclass
class Comparisons:
    """P comparisons as text: prompt[i] with chosen[i] preferred over rejected[i]."""

    prompts: list[str]
    chosen: list[str]
    rejected: list[str]

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx) -> "Comparisons":
        return Comparisons([self.prompts[i] for i in idx], [self.chosen[i] for i in idx], [self.rejected[i] for i in idx])


def tokenize_comparisons(tokenizer, data: Comparisons, max_length: int) -> tuple[list[dict], list[dict]]:
    """Tokenise every (prompt, chosen) and (prompt, rejected) text pair once, unpadded."""
    def encode(completions):
        enc = tokenizer(data.prompts, completions, truncation="longest_first", max_length=max_length)
        return [{k: enc[k][i] for k in enc.keys()} for i in range(len(data))]

    return encode(data.chosen), encode(data.rejected)


def collate(features: list[dict], pad_id: int, device) -> dict:
    """Right-pad token lists to the longest in the batch (dynamic padding) as tensors."""
    longest = max(len(f["input_ids"]) for f in features)
    return {k: torch.tensor([f[k] + [pad_id if k == "input_ids" else 0] * (longest - len(f[k])) for f in features],
                            device=device) for k in features[0]}


def pair_scores(model, batch: dict, n_pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of chosen and rejected, (P,) each, from one forward pass over the 2P sequences."""
    scores = reward_from_logits(model(**batch).logits)
    return scores[:n_pairs], scores[n_pairs:]


def pair_correct(chosen_scores, rejected_scores) -> np.ndarray:
    """Per comparison: 1 if chosen scores higher, 0.5 on a tie, 0 otherwise. (P,) arrays → (P,)."""
    chosen, rejected = np.asarray(chosen_scores), np.asarray(rejected_scores)
    return (chosen > rejected) + 0.5 * (chosen == rejected)


def evaluate_comparisons(model, tokenizer, data: Comparisons, max_length: int) -> dict:
    """Accuracy (ties count half), mean BT loss and the per-comparison verdicts (`correct`, for paired tests)
    of the model on comparisons."""
    c = score_pairs(model, tokenizer, data.prompts, data.chosen, max_length=max_length)
    r = score_pairs(model, tokenizer, data.prompts, data.rejected, max_length=max_length)
    margin, correct = c - r, pair_correct(c, r)
    return {
        "accuracy": float(np.mean(correct)),
        "loss": float(np.mean(np.logaddexp(0.0, -margin))),
        "correct": correct,
    }


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, window: int = 32) -> list:
    """Shuffled batches of indices whose members have similar lengths (less padding per forward).

    Shuffle, sort each run of `window` batches by length, cut into batches, shuffle the batch order.
    """
    order = rng.permutation(len(lengths))
    batches = []
    for w in range(0, len(order), batch_size * window):
        chunk = order[w : w + batch_size * window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def linear_schedule(opt, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup` steps, then linear decay to 0 at `total` — transformers'
    get_linear_schedule_with_warmup, written here because importing transformers.optimization pulls
    in transformers.trainer_utils and peft (~2.5 s on every CLI start)."""
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _save_state(path: Path, model, opt, sched, step: int, losses: list[float]) -> None:
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                "torch_rng": torch.get_rng_state(), "step": step, "losses": losses}, buf)
    atomic_write_bytes(path, buf.getvalue())


def train_reward_model(model, tokenizer, train: Comparisons, cfg: RMTraining, *, seed: int = 0,
                       log: Callable[..., None] | None = None, phase: str = "rm",
                       state_file: Path | None = None) -> dict:
    """Train `model` in place with the Bradley–Terry loss (SPEC §5) under settings `cfg`; returns summary stats.

    Data order is shuffled each epoch by `seed` in length buckets; linear decay with 10% warm-up;
    grad norm clipped at 1.
    `log(**metrics)` receives one dict per step (`phase`, `loss/bt`, `reward/accuracy`, `reward/margin`, `lr`).
    cfg.center_coef > 0 adds center_coef · (r_chosen + r_rejected)² (reward centering).
    With `state_file`, every cfg.checkpoint_every steps the weights, optimizer, schedule, torch RNG and
    step are saved there (atomically); if it exists at the start, training continues from it and ends
    where an uninterrupted run would (the data order is replayed from `seed`).

    Under torchrun (dist.wrap: cfg.parallel ddp or fsdp) each rank takes a strided share of every global
    batch and its loss is weighted by its share, so the averaged gradient is that of the whole batch:
    K processes train the same model as one process, up to floating-point order. cfg.precision "bf16"
    autocasts the forward pass.
    """
    rng = np.random.default_rng(seed)
    steps_per_epoch = -(-len(train) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    start = time.perf_counter()
    state = load_state(state_file) if state_file is not None and Path(state_file).is_file() else None
    if state is not None:
        model.load_state_dict(state["model"])
    device = next(model.parameters()).device
    net = dist.wrap(model, cfg.parallel, device)
    sharded = dist.is_sharded(model)
    if sharded and state_file is not None and cfg.checkpoint_every:
        console.print("note: resumable training states are not written under parallel=fsdp")
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = linear_schedule(opt, int(0.1 * total), total)
    done, losses = _restore(state, opt, sched)
    net.train()
    enc_c, enc_r = tokenize_comparisons(tokenizer, train, cfg.max_length)
    lengths = np.array([max(len(c["input_ids"]), len(r["input_ids"])) for c, r in zip(enc_c, enc_r, strict=True)])
    step = 0
    with progress_bar(total, "train reward model") as advance:
        advance(done)
        for epoch in range(cfg.epochs):
            for batch in bucketed_batches(lengths, cfg.batch_size, rng):  # replayed on resume: same order
                step += 1
                if step <= done:
                    continue
                stats = _bt_step(net, opt, sched, cfg, [enc_c[i] for i in batch], [enc_r[i] for i in batch],
                                 tokenizer.pad_token_id, device)
                losses.append(stats["loss/bt"])
                if log is not None:
                    log(phase=phase, step=step, epoch=epoch, lr=sched.get_last_lr()[0], **stats)
                advance(info=f"loss {np.mean(losses[-20:]):.3f}")
                if (state_file is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0
                        and step < total and dist.is_main() and not sharded):
                    _save_state(state_file, model, opt, sched, step, losses)
    model.eval()
    model.config.goodhart_format = "pair"  # trained on (prompt, completion) text pairs: score it the same way
    seconds = time.perf_counter() - start
    k = max(1, steps_per_epoch // 2)
    return {
        "rm/steps": step,
        "rm/loss_first": float(np.mean(losses[:k])),
        "rm/loss_last": float(np.mean(losses[-k:])),
        "rm/pairs_per_s": min(len(train) * cfg.epochs, (step - done) * cfg.batch_size) / seconds,
        "time/rm_train_s": seconds,
    }


def _restore(state: dict | None, opt, sched) -> tuple[int, list[float]]:
    """Optimizer, schedule and torch RNG from a saved training state; (steps done, losses so far)."""
    if state is None:
        return 0, []
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), list(state["losses"])


def _bt_step(net, opt, sched, cfg: RMTraining, chosen_feats: list[dict], rejected_feats: list[dict], pad_id: int,
             device) -> dict:
    """One Bradley–Terry update on a global batch of comparisons; returns the step's stats (rank-averaged).

    Under torchrun this rank takes a strided share and weights its loss by the share, so DDP's average
    is the whole batch's gradient."""
    idx = dist.my_slice(list(range(len(chosen_feats))))  # the whole batch in one process
    weight = len(idx) * dist.world_size() / len(chosen_feats)  # DDP averages: Σ weights·means = batch mean
    if not idx:  # fewer pairs than processes: join the gradient average with weight 0
        idx, weight = [0], 0.0
    features = [chosen_feats[i] for i in idx] + [rejected_feats[i] for i in idx]
    with autocast(device, cfg.precision):
        chosen, rejected = pair_scores(net, collate(features, pad_id, device), len(idx))
    chosen, rejected = chosen.float(), rejected.float()
    loss, stats = bt_loss(chosen, rejected)
    if cfg.center_coef > 0:
        center = centering_loss(chosen, rejected)
        loss = loss + cfg.center_coef * center
        stats["loss/center"] = center.item()
    opt.zero_grad(set_to_none=True)
    (loss * weight).backward()
    stats = dist.mean(stats)
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    sched.step()
    return stats
