"""`goodhart run`: the default gold-vs-proxy Best-of-n overoptimization study.

1. sample completions of training prompts from the initial policy;
2. label within-prompt pairs with the gold reward and train a Bradley–Terry proxy RM;
3. sample a fresh pool of N completions for each held-out evaluation prompt, score with gold and proxy;
4. normalise both rewards on that pool (SPEC §5) and estimate Best-of-n gold and proxy for every
   n ≤ N (SPEC §3) against d = sqrt(KL bound) (SPEC §2), with bootstrap bands;
5. write the run directory and the report.
"""

import time
from pathlib import Path

import numpy as np
import torch

from goodhart import dist
from goodhart.bon.curve import bon_curve, resolve_ns
from goodhart.config import RMTraining, RunConfig
from goodhart.device import resolve_device, seed_everything
from goodhart.errors import GoodhartError
from goodhart.progress import console
from goodhart.reward.data import VAL_PAIRS_MAX, world_preferences
from goodhart.reward.labels import make_pairs
from goodhart.reward.load import RewardModel
from goodhart.reward.normalise import standardise
from goodhart.reward.run import fit_reward_model
from goodhart.reward.train import pair_correct
from goodhart.runs import SAMPLES, RunDir, save_checkpoint, write_jsonl
from goodhart.sampling.engines import check_engine
from goodhart.sampling.pool import policy_pool
from goodhart.worlds import World, load_world


def split_prompts(prompts: list[str], data, seed: int) -> tuple[list[str], list[str]]:
    """Disjoint (train, eval) prompt lists drawn by a seeded shuffle."""
    need = data.train_prompts + data.eval_prompts
    if len(prompts) < need:
        raise GoodhartError(
            f"the world has {len(prompts)} prompts but data.train_prompts + data.eval_prompts = {need}"
        )
    order = np.random.default_rng(seed).permutation(len(prompts))
    chosen = [prompts[i] for i in order[:need]]
    return chosen[: data.train_prompts], chosen[data.train_prompts :]


def start_study(cfg, out: str | Path, overwrite: bool):
    """Seed, choose the device, load the world, split its prompts, create the run dir, move the policy.

    Returns (world, device, train_prompts, eval_prompts, run). Nothing is written before the world loads.
    """
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    world = load_world(cfg)
    train_prompts, eval_prompts = split_prompts(world.prompts, cfg.data, cfg.seed)
    run = RunDir.create(out, cfg.model_dump(mode="json"), overwrite=overwrite)
    world.policy.to(device)
    return world, device, train_prompts, eval_prompts, run


def world_pools(world: World, cfg, train_prompts: list[str], eval_prompts: list[str]):
    """(train completions, their gold, eval pool, its gold), each (prompts, samples), sampled from the
    world's policy with the seeds every study uses (seed, seed + 1), so the cache is shared."""
    comps, gold = policy_pool(world, train_prompts, cfg.data.train_samples_per_prompt, cfg.sampling, cfg.seed,
                              "sample train", cfg.cache)
    pool, pool_gold = policy_pool(world, eval_prompts, cfg.data.eval_samples_per_prompt, cfg.sampling, cfg.seed + 1,
                                  "sample eval pool", cfg.cache)
    return comps, gold, pool, pool_gold


def own_proxy(cfg: RunConfig) -> RewardModel:
    """The user's RM(s) as the proxy: one checkpoint / run / WARM / ensemble dir, or several → a mean ensemble."""
    from goodhart.reward.load import load_checkpoint, load_reward_model

    trust = cfg.hf.trust_remote_code
    if len(cfg.proxy) == 1:
        rm = load_reward_model(cfg.proxy[0], trust)
    else:
        rm = RewardModel([load_checkpoint(p, trust) for p in cfg.proxy], "mean", name="ensemble")
    rm.proxy_format = cfg.proxy_format
    return rm


def own_proxy_stats(rm: RewardModel, prompts, comps, gold, scores, seed: int) -> dict:
    """Accuracy of an untrained-here proxy on gold-labelled within-prompt pairs of the pool."""
    pairs = make_pairs(gold, np.random.default_rng(seed), VAL_PAIRS_MAX)
    correct = pair_correct(scores[pairs[:, 0], pairs[:, 1]], scores[pairs[:, 0], pairs[:, 2]])
    return {"rm/val_accuracy": float(np.mean(correct)), "rm/val_pairs": len(pairs), "rm/train_pairs": 0,
            "rm/params": sum(p.numel() for m, _ in rm.members for p in m.parameters())}


def train_proxy(world: World, cfg: RunConfig, run: RunDir, prompts: list[str], comps: np.ndarray,
                gold: np.ndarray, device: torch.device):
    """Gold-labelled comparisons → Bradley–Terry proxy; validation on held-out training prompts."""
    train, val, flipped = world_preferences(prompts, comps, gold, cfg.rm, cfg.seed)
    model, tok = world.make_proxy(cfg.seed)
    model.to(device)
    stats = fit_reward_model(model, tok, train, val, flipped, RMTraining.of(cfg), cfg.seed, log=run.log_metrics)
    return model, tok, stats


def saved_proxy(world: World, cfg: RunConfig, run: RunDir, prompts, comps, gold, device) -> tuple[RewardModel, dict]:
    """train_proxy, then save it as run/proxy_rm with a model card; (the proxy as a RewardModel, its stats)."""
    model, tok, stats = train_proxy(world, cfg, run, prompts, comps, gold, device)
    console.print(f"proxy RM: validation accuracy {stats['rm/val_accuracy']:.3f} on {stats['rm/val_pairs']} pairs")
    save_checkpoint(run, "proxy_rm", model, tok, card={
        "trained on": f"{stats['rm/train_pairs']} gold-labelled comparisons ({world.name} world, gold "
                      f"{world.gold_name})", "label noise ρ": cfg.rm.label_noise,
        "validation accuracy": f"{stats['rm/val_accuracy']:.3f} on {stats['rm/val_pairs']} pairs"})
    return RewardModel([(model, tok)], name="proxy_rm"), stats


def sample_rows(train: tuple, evaluation: tuple) -> list[dict]:
    """samples.jsonl rows: train (prompts, (B, K) completions, gold) — completions None for an own proxy —
    then eval (prompts, (E, N) completions, raw gold, raw proxy)."""
    prompts, comps, gold = train
    rows = [{"split": "train", "prompt": p, "completion": c, "gold": float(g)}
            for p, cs, gs in zip(prompts, comps, gold, strict=True) for c, g in zip(cs, gs, strict=True)
            ] if comps is not None else []
    return rows + [{"split": "eval", "prompt": p, "completion": c, "gold": float(g), "proxy": float(r)}
                   for p, cs, gs, rs in zip(*evaluation, strict=True) for c, g, r in zip(cs, gs, rs, strict=True)]


def bon_rows(gold: np.ndarray, proxy: np.ndarray, ns: np.ndarray, n_boot: int, seed: int) -> list[dict]:
    """Result rows for proxy-selected and gold-selected (oracle) Best-of-n, gold/proxy both reported."""
    return [{"study": "bon", "method": "bon", "reward_model": selector} | point
            for selector, select in (("proxy", proxy), ("gold", gold))
            for point in bon_curve(select, gold, proxy, ns, n_boot, seed)["points"]]


def checked_inputs(cfg: RunConfig) -> RewardModel | None:
    """Refuse settings `goodhart run` cannot honour and open the user's own proxy (None: one is trained),
    all before the run directory is created."""
    if cfg.parallel == "fsdp":
        raise GoodhartError("parallel=fsdp is for `rm train` and `policy train` (models too large for one device); "
                            "goodhart run's proxy RM trains with DDP under torchrun: use parallel=ddp")
    check_engine(cfg.sampling.engine)
    return own_proxy(cfg) if cfg.proxy else None


def run_bon_study(cfg: RunConfig, out: str | Path, overwrite: bool = False) -> Path:
    """Run the whole study into run directory `out`; returns its path. See the module docstring."""
    from goodhart.report import build_report

    start = time.perf_counter()
    own = checked_inputs(cfg)
    world, device, train_prompts, eval_prompts, run = start_study(cfg, out, overwrite)
    console.print(f"[bold]goodhart run[/] world={world.name} → {run.path}")

    t = time.perf_counter()
    train_comps = train_gold = None
    if cfg.proxy:  # the user's own RM(s), used as they are: no training samples needed
        rm = own.to(device)
    else:
        train_comps, train_gold = policy_pool(world, train_prompts, cfg.data.train_samples_per_prompt, cfg.sampling,
                                              cfg.seed, "sample train", cfg.cache)
    t_sample_train = time.perf_counter() - t
    if not cfg.proxy:
        rm, rm_stats = saved_proxy(world, cfg, run, train_prompts, train_comps, train_gold, device)

    t = time.perf_counter()
    N = cfg.data.eval_samples_per_prompt
    eval_comps, gold_raw = policy_pool(world, eval_prompts, N, cfg.sampling, cfg.seed + 1, "sample eval pool",
                                       cfg.cache)
    t_sample_eval = time.perf_counter() - t
    flat_prompts = [p for p in eval_prompts for _ in range(N)]
    proxy_raw = dist.map_pairs(lambda p, c: rm.score(p, c, max_length=cfg.rm.max_length), flat_prompts,
                               list(eval_comps.ravel())).reshape(gold_raw.shape)
    if cfg.proxy:
        rm_stats = own_proxy_stats(rm, eval_prompts, eval_comps, gold_raw, proxy_raw, cfg.seed)
        console.print(f"own proxy {rm.name}: accuracy {rm_stats['rm/val_accuracy']:.3f} on {rm_stats['rm/val_pairs']} "
                      "gold-labelled pairs of the evaluation pool")

    gold, g_shift, g_scale = standardise(gold_raw)
    proxy, p_shift, p_scale = standardise(proxy_raw)
    ns = resolve_ns(cfg.bon.ns, N)
    common = {
        "world": world.name, "gold_reward": world.gold_name, "rm_backbone": rm.name if cfg.proxy else world.proxy_name,
        "rm_params": rm_stats["rm/params"], "rm_pairs": rm_stats["rm/train_pairs"],
        "rm_val_acc": rm_stats["rm/val_accuracy"], "label_noise": cfg.rm.label_noise,
        "gold_shift": g_shift, "gold_scale": g_scale, "proxy_shift": p_shift, "proxy_scale": p_scale,
        "pool_n": N, "eval_prompts": len(eval_prompts), "seed": cfg.seed,
    }
    rows = [common | r for r in bon_rows(gold, proxy, ns, cfg.bon.bootstrap, cfg.seed)]
    run.append_results(rows)

    samples = sample_rows((train_prompts, train_comps, train_gold), (eval_prompts, eval_comps, gold_raw, proxy_raw))
    run.log_metrics(phase="summary", **rm_stats, **{
        "time/sample_train_s": t_sample_train, "time/sample_eval_s": t_sample_eval,
        "time/total_s": time.perf_counter() - start, "norm/gold_shift": g_shift, "norm/gold_scale": g_scale,
        "norm/proxy_shift": p_shift, "norm/proxy_scale": p_scale, "processes": dist.world_size(),
    })
    if run.writer:
        write_jsonl(run.file(SAMPLES), samples)
        build_report(run.path)
    console.print(f"done in {time.perf_counter() - start:.0f} s: {run.path / 'report.html'}")
    run.close()
    return run.path
