"""`goodhart rm suite`: do ensembles and WARM resist label noise, distribution shift and Best-of-n
overoptimization better than single RMs? (SPEC §5–§6; Ramé et al. 2024; Coste et al. 2024)

1. gold-labelled comparisons from the world's policy, a fraction ρ of training labels flipped;
2. a shared initial run (two stages; a checkpoint after each), then M members fine-tuned from
   those checkpoints with different learning rates, dropout and data order (WARM's diversity);
3. every member scores clean validation pairs, the flipped training pairs, OOD pairs and a BoN pool;
   members are standardised on that pool (initial-policy samples) before they are aggregated;
4. rows for each member, ENS mean / WCO / UWO and WARM at each size: accuracies, and the gold of
   the Best-of-n curve when that RM is the proxy (selection by the aggregate's own score).
"""

import copy
import time
from pathlib import Path

import numpy as np

from goodhart.bon.curve import POINT_KEYS, bon_curve, resolve_ns
from goodhart.commands.run import start_study, world_pools
from goodhart.config import RMTraining
from goodhart.progress import console
from goodhart.report.tables import suite_table
from goodhart.reward.data import VAL_PAIRS_MAX, pairs_to_comparisons, world_preferences
from goodhart.reward.ensemble import aggregate
from goodhart.reward.labels import make_pairs
from goodhart.reward.normalise import standardise
from goodhart.reward.run import set_dropout
from goodhart.reward.train import pair_correct, train_reward_model
from goodhart.reward.warm import weight_average
from goodhart.runs import atomic_write_text
from goodhart.sampling.pool import policy_pool
from goodhart.scoring import score_pairs


def _accuracy(chosen: np.ndarray, rejected: np.ndarray) -> float | None:
    return float(np.mean(pair_correct(chosen, rejected))) if len(chosen) else None


def _train(model, tok, data, lr, epochs, cfg, seed, run, phase):
    return train_reward_model(model, tok, data, RMTraining.of(cfg, lr=lr, epochs=epochs), seed=seed,
                              log=run.log_metrics, phase=phase)


def train_members(world, cfg, run, train, device) -> list:
    """Shared initial run in two stages (a checkpoint after each), then M fine-tuned members."""
    model, tok = world.make_proxy(cfg.seed)
    model.to(device)
    first = (cfg.rm.epochs + 1) // 2
    inits = []
    for stage, epochs in enumerate(e for e in (first, cfg.rm.epochs - first) if e > 0):
        _train(model, tok, train, cfg.rm.lr, epochs, cfg, cfg.seed + stage, run, f"rm_init_{stage}")
        inits.append(copy.deepcopy(model))
    members = []
    for m in range(cfg.members):
        member = copy.deepcopy(inits[m % len(inits)])
        set_dropout(member, cfg.member_dropouts[m % len(cfg.member_dropouts)])
        lr = cfg.member_lrs[m % len(cfg.member_lrs)]
        console.print(f"member {m}: from initial checkpoint {m % len(inits)}, lr {lr:g}, "
                      f"dropout {cfg.member_dropouts[m % len(cfg.member_dropouts)]}")
        _train(member, tok, train, lr, cfg.member_epochs, cfg, cfg.seed + 100 + m, run, f"rm_member_{m}")
        members.append(member)
    return members, tok


def score_sets(model, tok, sets: dict, max_length: int) -> dict:
    """Scores of every named set: {name: (prompts, completions)} → {name: (B,) array}."""
    return {k: score_pairs(model, tok, p, c, max_length=max_length) for k, (p, c) in sets.items()}


def standardised_scores(model, tok, sets: dict, max_length: int) -> dict:
    """Scores of every named set, standardised on the set named "pool" (initial-policy samples, SPEC §5)."""
    scores = score_sets(model, tok, sets, max_length)
    return {k: standardise(v, scores["pool"])[0] for k, v in scores.items()}


def selector_scores(members, tok, sets, cfg) -> dict:
    """{rm name: {set: scores}} for members, ENS mean / WCO / UWO and WARM at each size."""
    per_member = [standardised_scores(m, tok, sets, cfg.rm.max_length) for m in members]
    out = {f"member_{m}": s for m, s in enumerate(per_member)}
    for k in cfg.warm_sizes:
        for method in ("mean", "wco", "uwo"):
            out[f"{'ens_' if method == 'mean' else ''}{method}_M{k}"] = {
                key: aggregate(np.stack([s[key] for s in per_member[:k]]), method, cfg.uwo_lam) for key in sets
            }
        out[f"warm_M{k}"] = standardised_scores(weight_average(members[:k]), tok, sets, cfg.rm.max_length)
    return out


def run_rm_suite(cfg, out: str | Path, overwrite: bool = False) -> Path:
    """Run the RM suite (an RMSuiteConfig) into `out`; writes results.jsonl, table.md and the report."""
    from goodhart.report import build_report

    start = time.perf_counter()
    world, device, train_prompts, eval_prompts, run = start_study(cfg, out, overwrite)
    comps, gold, pool, pool_gold = world_pools(world, cfg, train_prompts, eval_prompts)
    train, val, flipped = world_preferences(train_prompts, comps, gold, cfg.rm, cfg.seed)
    N = cfg.data.eval_samples_per_prompt
    flip = train.subset(np.flatnonzero(flipped))
    sets = {"val_c": (val.prompts, val.chosen), "val_r": (val.prompts, val.rejected),
            "flip_c": (flip.prompts, flip.chosen), "flip_r": (flip.prompts, flip.rejected),
            "pool": ([p for p in eval_prompts for _ in range(N)], list(pool.ravel()))}
    if world.ood_prompts and cfg.ood_prompts:
        rng = np.random.default_rng(cfg.seed)
        ood_prompts = [world.ood_prompts[i] for i in rng.permutation(len(world.ood_prompts))[: cfg.ood_prompts]]
        ood_comps, ood_gold = policy_pool(world, ood_prompts, cfg.ood_samples_per_prompt, cfg.sampling,
                                          cfg.seed + 2, "sample OOD", cfg.cache)
        ood = pairs_to_comparisons(ood_prompts, ood_comps, make_pairs(ood_gold, rng, VAL_PAIRS_MAX))
        sets |= {"ood_c": (ood.prompts, ood.chosen), "ood_r": (ood.prompts, ood.rejected)}

    members, tok = train_members(world, cfg, run, train, device)
    scores = selector_scores(members, tok, sets, cfg)

    gold_norm = standardise(pool_gold)[0]
    ns = resolve_ns(cfg.bon.ns, N)
    keys = POINT_KEYS if cfg.bon.bootstrap else ("n", "kl", "d", "gold", "proxy")  # bands with bon.bootstrap > 0
    rows = []
    for name, s in scores.items():
        select = s["pool"].reshape(pool_gold.shape)
        curve = bon_curve(select, gold_norm, select, ns, cfg.bon.bootstrap, cfg.seed)
        peak = curve["summary"]
        rows.append({
            "study": "rm_suite", "reward_model": name, "kind": name.split("_M")[0].rstrip("_0123456789"),
            "members": int(name.rsplit("_M", 1)[1]) if "_M" in name else 1, "label_noise": cfg.rm.label_noise,
            "clean_acc": _accuracy(s["val_c"], s["val_r"]), "flipped_memorised": _accuracy(s["flip_c"], s["flip_r"]),
            "ood_acc": _accuracy(s["ood_c"], s["ood_r"]) if "ood_c" in s else None,
            "bon_peak_gold": peak["peak_gold"], "bon_peak_n": peak["peak_n"], "bon_gold_at_max_n": peak["gold_at_max_n"],
            "train_pairs": len(train), "flipped_pairs": int(flipped.sum()), "seed": cfg.seed,
        })
        rows += [{"study": "bon", "method": "bon", "reward_model": name, "world": world.name}
                 | {k: p[k] for k in keys} | {"seed": cfg.seed} for p in curve["points"]]
    run.append_results(rows)
    table = suite_table([r for r in rows if r["study"] == "rm_suite"])
    atomic_write_text(run.file("table.md"), table)
    print(table)
    run.log_metrics(phase="summary", **{"time/total_s": time.perf_counter() - start, "rm/train_pairs": len(train),
                                        "rm/flipped_pairs": int(flipped.sum())})
    build_report(run.path)
    console.print(f"done in {time.perf_counter() - start:.0f} s: {run.path / 'report.html'}")
    run.close()
    return run.path
