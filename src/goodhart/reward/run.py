"""`goodhart rm train`, `rm warm`, `rm ensemble`, `rm eval`: reward-model runs on disk."""

from pathlib import Path

import numpy as np
import torch

from goodhart import dist
from goodhart.config import RMTraining
from goodhart.device import load_state, resolve_device, seed_everything
from goodhart.errors import GoodhartError
from goodhart.progress import console
from goodhart.reward.data import read_preferences, split_file_preferences, world_preferences
from goodhart.reward.load import checkpoint_dir, load_checkpoint, load_reward_model
from goodhart.reward.normalise import normalisation
from goodhart.reward.train import Comparisons, evaluate_comparisons, pair_correct, train_reward_model
from goodhart.reward.warm import weight_average
from goodhart.runs import (
    METRICS,
    RESULTS,
    RunDir,
    read_jsonl,
    require_run,
    resume_run,
    save_checkpoint,
    write_jsonl,
)
from goodhart.sampling.pool import policy_pool
from goodhart.scoring import score_pairs

RM_STATE = "rm_state.pt"  # resumable training state (weights, optimizer, schedule, RNG, step)
RM_STATE_KEYS = ("model", "opt", "sched", "torch_rng", "step", "losses")  # what train._save_state writes


def set_dropout(model, p: float) -> None:
    """Set every dropout probability (modules and config, so a saved checkpoint keeps it)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for key, value in vars(model.config).items():
        if "dropout" in key and isinstance(value, float):
            setattr(model.config, key, p)


def world_train_pool(cfg):
    """(prompts, comps, gold) for RM training from the world's policy; the same prompt choice and
    sample cache as `goodhart run` with the same seed, prompts and samples per prompt."""
    from goodhart.worlds import load_world

    world = load_world(cfg)
    if len(world.prompts) < cfg.prompts:
        raise GoodhartError(f"the world has {len(world.prompts)} prompts but prompts = {cfg.prompts}")
    order = np.random.default_rng(cfg.seed).permutation(len(world.prompts))[: cfg.prompts]
    prompts = [world.prompts[i] for i in order]
    world.policy.to(resolve_device(cfg.device))
    comps, gold = policy_pool(world, prompts, cfg.samples_per_prompt, cfg.sampling, cfg.seed, "sample", cfg.cache)
    return prompts, comps, gold


def preference_split(cfg) -> tuple[Comparisons, Comparisons, np.ndarray]:
    if cfg.data is not None:
        data, flipped = read_preferences(cfg.data, cfg.data_split)
        return split_file_preferences(data, flipped, cfg.rm, cfg.seed)
    return world_preferences(*world_train_pool(cfg), cfg.rm, cfg.seed)


def train_ensemble(make_model, train: Comparisons, cfg: RMTraining, members: int, dropouts: list[float], seed: int,
                   device, log=None) -> tuple[list, object]:
    """`members` RMs from one shared init (`make_model()` → (model, tokenizer) gives the same weights
    each call), each with its own data order and, when members > 1, its own dropout (WARM §3)."""
    models, tok = [], None
    for m in range(members):
        model, tok = make_model()
        if members > 1:
            set_dropout(model, dropouts[m % len(dropouts)])
        model.to(device)
        train_reward_model(model, tok, train, cfg, seed=seed + 1000 * m, log=log, phase=f"rm_member_{m}")
        models.append(model)
    return models, tok


def store_normalisation(model, tok, data: Comparisons, max_length: int) -> None:
    """Save (shift, scale) of the model's scores on its training completions in its config
    (`goodhart_normalisation`), so any loader can standardise it: (r − shift) / scale."""
    texts = data.chosen + data.rejected
    shift, scale = normalisation(score_pairs(model, tok, data.prompts * 2, texts, max_length=max_length))
    model.config.goodhart_normalisation = {"shift": float(shift), "scale": float(scale), "on": "training completions"}


def fit_reward_model(model, tok, train: Comparisons, val: Comparisons, flipped: np.ndarray, rm_cfg: RMTraining,
                     seed: int, log=None, state_file: Path | None = None) -> dict:
    """Train, then measure clean validation accuracy and memorisation of flipped training labels.

    `state_file`: resumable training state (train_reward_model)."""
    stats = train_reward_model(model, tok, train, rm_cfg, seed=seed, log=log, state_file=state_file)
    store_normalisation(model, tok, train, rm_cfg.max_length)
    val_stats = evaluate_comparisons(model, tok, val, rm_cfg.max_length)
    stats |= {"rm/val_accuracy": val_stats["accuracy"], "rm/val_loss": val_stats["loss"],
              "rm/train_pairs": len(train), "rm/val_pairs": len(val), "rm/flipped_pairs": int(flipped.sum()),
              "rm/params": sum(p.numel() for p in model.parameters())}
    if flipped.any():
        # agreement with the (wrong) flipped label on the training pairs: lower = less memorisation
        stats["rm/flipped_memorised"] = evaluate_comparisons(model, tok, train.subset(np.flatnonzero(flipped)),
                                                             rm_cfg.max_length)["accuracy"]
    return stats


def _open_rm_run(cfg, out: Path, overwrite: bool, resume: bool) -> tuple[RunDir, int]:
    """(run, step of the saved training state or 0). --resume needs a run killed before it finished."""
    run = RunDir(out)
    if not resume:
        return RunDir.create(out, cfg.model_dump(mode="json"), overwrite=overwrite), 0
    if run.file(RESULTS).is_file():
        raise GoodhartError(f"{out} holds a finished RM run; nothing to resume")
    run = resume_run(out, cfg.model_dump(mode="json"), RM_STATE, model=type(cfg))
    if not run.file(RM_STATE).is_file():  # restarted: killed before its first checkpoint
        return run, 0
    step = int(load_state(run.file(RM_STATE))["step"])
    keep = [r for r in read_jsonl(run.file(METRICS)) if r.get("step", 0) <= step] if run.file(METRICS).is_file() else []
    if run.writer:
        write_jsonl(run.file(METRICS), keep)  # rows after the checkpoint are redone
    console.print(f"resuming {out} at step {step}")
    return run, step


def train_rm_run(cfg, out: str | Path, overwrite: bool = False, resume: bool = False) -> Path:
    """Train one Bradley–Terry RM (an RMTrainConfig) into run directory `out` (checkpoint in out/model).

    A training state is saved every cfg.checkpoint_every steps; `resume` continues a killed run from it."""
    from goodhart.worlds import proxy_factory

    if resume:
        state = require_run(out).file(RM_STATE)
        if state.is_file():  # refuse a foreign state before anything is sampled, printed or rewritten
            load_state(state, keys=RM_STATE_KEYS, mmap=True)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    train, val, flipped = preference_split(cfg)
    if cfg.init_from is not None:
        model, tok = load_checkpoint(cfg.init_from, cfg.hf.trust_remote_code)
    else:
        model, tok = proxy_factory(cfg.world, cfg.hf, cfg.backbone)(cfg.seed)
    run, _ = _open_rm_run(cfg, Path(out), overwrite, resume)
    if cfg.dropout is not None:
        set_dropout(model, cfg.dropout)
    model.to(device)
    stats = fit_reward_model(model, tok, train, val, flipped, RMTraining.of(cfg), cfg.seed, log=run.log_metrics,
                             state_file=run.file(RM_STATE))
    weights = dist.full_state_dict(model)  # every rank joins the gather under FSDP
    save_checkpoint(run, "model", model, tok, state_dict=weights, card={
        "trained on": f"{stats['rm/train_pairs']} comparisons ({cfg.data or f'{cfg.world} world samples'})",
        "label noise ρ": cfg.rm.label_noise, "initialised from": cfg.init_from, "dropout": cfg.dropout,
        "validation accuracy": f"{stats['rm/val_accuracy']:.3f} on {stats['rm/val_pairs']} pairs",
        "flipped labels memorised": stats.get("rm/flipped_memorised")})
    if run.writer:
        write_jsonl(run.file("pairs.jsonl"), [
            {"split": split, "prompt": p, "chosen": c, "rejected": r, "flipped": bool(f)}
            for split, data, flags in (("train", train, flipped), ("val", val, np.zeros(len(val), bool)))
            for p, c, r, f in zip(data.prompts, data.chosen, data.rejected, flags, strict=True)
        ])
    run.append_results([{
        "study": "rm", "reward_model": run.path.name, "rm_params": stats["rm/params"],
        "rm_pairs": stats["rm/train_pairs"], "label_noise": cfg.rm.label_noise, "val_acc": stats["rm/val_accuracy"],
        "val_loss": stats["rm/val_loss"], "flipped_memorised": stats.get("rm/flipped_memorised"),
        "lr": cfg.rm.lr, "dropout": cfg.dropout, "epochs": cfg.rm.epochs, "seed": cfg.seed, "init_from": cfg.init_from,
    }])
    run.log_metrics(phase="summary", **stats, processes=dist.world_size())
    if run.writer:
        run.file(RM_STATE).unlink(missing_ok=True)
    console.print(f"RM → {run.path / 'model'}: validation accuracy {stats['rm/val_accuracy']:.3f} "
                  f"({stats['rm/train_pairs']} training pairs, {stats['time/rm_train_s']:.0f} s)")
    run.close()
    return run.path


def build_warm(members: list[str | Path], out: str | Path, weights: list[float] | None = None) -> Path:
    """Weight-average member checkpoints (SPEC §6) into a new checkpoint directory `out`."""
    if len(members) < 2:
        raise GoodhartError("WARM needs at least 2 member checkpoints")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GoodhartError(f"--out {out} exists and is not a directory")
    if (out / "config.json").exists():
        raise GoodhartError(f"{out} already holds a checkpoint; choose another --out")
    loaded = [load_checkpoint(m) for m in members]
    warm = weight_average([m for m, _ in loaded], weights)
    out.mkdir(parents=True, exist_ok=True)
    w = weights or [1.0] * len(members)
    card = {"WARM members": ", ".join(str(m) for m in members),
            "weights": ", ".join(f"{x / sum(w):.3f}" for x in w)}
    return save_checkpoint(RunDir(out.parent), out.name, warm, loaded[0][1], card=card, kind="reward model (WARM)")


def eval_reward_models(models: list[str | Path], data: list[str | Path], max_length: int = 256) -> list[dict]:
    """Accuracy of each RM (checkpoint, run or ensemble dir) on each preference file; rows with
    `flipped: true` are reported apart (agreement with the flipped label = memorisation)."""
    rows = []
    for m in models:
        rm = load_reward_model(m)
        name = checkpoint_dir(m).parent.name if (Path(m) / "model").is_dir() else Path(m).name
        for source in data:
            pairs, flipped = read_preferences(str(source))
            correct = pair_correct(rm.score(pairs.prompts, pairs.chosen, max_length),
                                   rm.score(pairs.prompts, pairs.rejected, max_length))
            for subset, mask in (("clean", ~flipped), ("flipped", flipped)):
                if mask.any():
                    rows.append({"study": "rm_eval", "reward_model": name, "data": Path(source).name, "subset": subset,
                                 "pairs": int(mask.sum()), "accuracy": float(correct[mask].mean())})
    return rows
