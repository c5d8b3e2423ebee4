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
from goodhart.bon.prompt_stats import mcnemar_exact, paired_difference
from goodhart.commands.executor import Cell, CellRun, run_cells, worker_world
from goodhart.commands.run import start_study, world_pools
from goodhart.config import RMTraining
from goodhart.device import resolve_device
from goodhart.progress import console
from goodhart.report.suite_tables import suite_markdown
from goodhart.reward.data import VAL_PAIRS_MAX, pairs_to_comparisons, world_preferences
from goodhart.reward.ensemble import aggregate
from goodhart.reward.labels import make_pairs
from goodhart.reward.normalise import standardise
from goodhart.reward.run import set_dropout
from goodhart.reward.train import pair_correct, train_reward_model
from goodhart.reward.warm import weight_average
from goodhart.runs import RunDir, atomic_write_text, finished_units, open_units
from goodhart.sampling.pool import policy_pool
from goodhart.scoring import encode_for_scoring, score_encoded
from goodhart.worlds.family import shrink


def _accuracy(chosen: np.ndarray, rejected: np.ndarray) -> float | None:
    return float(np.mean(pair_correct(chosen, rejected))) if len(chosen) else None


def _train(model, tok, data, lr, epochs, cfg, seed, run, phase):
    return train_reward_model(model, tok, data, RMTraining.of(cfg, lr=lr, epochs=epochs), seed=seed,
                              log=run.log_metrics, phase=phase)


def make_member(world, cfg, seed: int, device):
    """A proxy from the world's backbone (score head initialised by `seed`), cut to cfg.rm_size."""
    model, tok = world.make_proxy(seed)
    size = cfg.rm_size.model_dump(exclude={"lr"})
    if any(v is not None for v in size.values()):
        model = shrink(model, **size)
    return model.to(device), tok


def train_members(world, cfg, run, train, device, seed: int, tag: str) -> list:
    """Shared initial run in two stages (a checkpoint after each), then M fine-tuned members."""
    model, tok = make_member(world, cfg, seed, device)
    lr = cfg.rm_size.lr or cfg.rm.lr
    first = (cfg.rm.epochs + 1) // 2
    inits = []
    for stage, epochs in enumerate(e for e in (first, cfg.rm.epochs - first) if e > 0):
        _train(model, tok, train, lr, epochs, cfg, seed + stage, run, f"{tag}rm_init_{stage}")
        inits.append(copy.deepcopy(model))
    members = []
    for m in range(cfg.members):
        member = copy.deepcopy(inits[m % len(inits)])
        set_dropout(member, cfg.member_dropouts[m % len(cfg.member_dropouts)])
        lr = cfg.member_lrs[m % len(cfg.member_lrs)]
        console.print(f"{tag}member {m}: from initial checkpoint {m % len(inits)}, lr {lr:g}, "
                      f"dropout {cfg.member_dropouts[m % len(cfg.member_dropouts)]}")
        _train(member, tok, train, lr, cfg.member_epochs, cfg, seed + 100 + m, run, f"{tag}rm_member_{m}")
        members.append(member)
    return members, tok


def independent_members(world, cfg, run, train, device, seed: int, tag: str) -> list:
    """Members that share only the pretrained backbone: each its own score-head init and data order,
    trained for rm.epochs from the backbone (Coste et al.'s ensembles; no shared fine-tuning path)."""
    out = []
    for i in range(cfg.independent):
        model, tok = make_member(world, cfg, seed + 200 + i, device)
        _train(model, tok, train, cfg.rm_size.lr or cfg.rm.lr, cfg.rm.epochs, cfg, seed + 200 + i, run,
               f"{tag}rm_indep_{i}")
        out.append(model)
    return out


def encode_sets(tok, sets: dict, max_length: int) -> dict:
    """Every named set {name: (prompts, completions)} tokenised once for all the replicate's models."""
    return {k: encode_for_scoring(tok, p, c, max_length=max_length) for k, (p, c) in sets.items()}


def standardised_scores(model, encoded: dict) -> dict:
    """Scores of every named set, standardised on the set named "pool" (initial-policy samples, SPEC §5)."""
    scores = {k: score_encoded(model, e) for k, e in encoded.items()}
    return {k: standardise(v, scores["pool"])[0] for k, v in scores.items()}


def selector_scores(members, encoded: dict, cfg) -> dict:
    """{rm name: {set: scores}} for members, ENS mean / WCO / UWO and WARM at each size."""
    per_member = [standardised_scores(m, encoded) for m in members]
    out = {f"member_{m}": s for m, s in enumerate(per_member)}
    for k in cfg.warm_sizes:
        for method in ("mean", "wco", "uwo"):
            out[f"{'ens_' if method == 'mean' else ''}{method}_M{k}"] = {
                key: aggregate(np.stack([s[key] for s in per_member[:k]]), method, cfg.uwo_lam) for key in encoded
            }
        out[f"warm_M{k}"] = standardised_scores(weight_average(members[:k]), encoded)
    return out


def unrelated_scores(indep, encoded: dict) -> dict:
    """Independent members, their ENS mean and their weight average (which WARM's premise says fails)."""
    per = [standardised_scores(m, encoded) for m in indep]
    k = len(indep)
    return {f"indep_{i}": s for i, s in enumerate(per)} | {
        f"ens_indep_M{k}": {key: aggregate(np.stack([s[key] for s in per]), "mean") for key in encoded},
        f"warm_indep_M{k}": standardised_scores(weight_average(indep), encoded)}


def right(scores: dict, kind: str) -> np.ndarray:
    """Per pair of set `kind` (val, flip, ood): does the RM prefer the truly better completion? Flipped
    pairs are stored as labelled (wrongly), so there the truth is the rejected side; ties are not right."""
    hits = pair_correct(scores[f"{kind}_c"], scores[f"{kind}_r"])
    return hits == 0.0 if kind == "flip" else hits == 1.0


def comparisons(scores: dict, sets: dict, cfg) -> list[dict]:
    """Paired tests on the same pairs (SPEC §11): McNemar of WARM vs ENS, each vs the best member by
    validation accuracy, independent WARM vs their ENS; each aggregate's accuracy minus the members' mean."""
    M = max(cfg.warm_sizes)
    members = [k for k in scores if k.startswith("member_")]
    best = max(members, key=lambda k: float(np.mean(right(scores[k], "val"))))
    pairs = [(f"warm_M{M}", f"ens_mean_M{M}"), (f"warm_M{M}", best), (f"ens_mean_M{M}", best)]
    pairs += [(f"warm_indep_M{cfg.independent}", f"ens_indep_M{cfg.independent}")] if cfg.independent else []
    rows = []
    for kind in ("val", "flip", "ood"):
        if f"{kind}_c" not in sets or not len(sets[f"{kind}_c"][0]):
            continue
        for a, b in pairs:
            ra, rb = right(scores[a], kind), right(scores[b], kind)
            only_a, only_b = int(np.sum(ra & ~rb)), int(np.sum(rb & ~ra))
            rows.append({"study": "rm_suite_test", "set": kind, "a": a, "b": "best single" if b == best else b,
                         "b_model": b, "only_a": only_a, "only_b": only_b, "pairs": len(ra),
                         "acc_a": float(ra.mean()), "acc_b": float(rb.mean()), "p": mcnemar_exact(only_a, only_b)})
        avg = float(np.mean([right(scores[m], kind).mean() for m in members]))
        rows += [{"study": "rm_suite_test", "set": kind, "a": a, "b": "average member", "pairs": len(sets[f"{kind}_c"][0]),
                  "acc_a": float(right(scores[a], kind).mean()), "acc_b": avg}
                 for a in (f"ens_mean_M{M}", f"warm_M{M}")]
    return rows


BON_DIFFS = (("warm", "ens_mean", "max"), ("warm", "ens_mean", "last"), ("wco", "ens_mean", "last"),
             ("uwo", "ens_mean", "last"))  # (A, B, statistic) at the largest M: gold of A's picks − B's


def bon_rows(scores: dict, gold_norm, cfg, ns, seed: int, common: dict) -> list[dict]:
    """Per RM: its Best-of-n summary fields (by name) and curve rows; paired WARM − ENS (peak, largest n)
    and WCO / UWO − mean (largest n) differences on common prompt resamples (bon.bootstrap > 0)."""
    keys = POINT_KEYS if cfg.bon.bootstrap else ("n", "kl", "d", "gold", "proxy")  # bands with bon.bootstrap > 0
    rows, summary, per_prompt = [], {}, {}
    for name, s in scores.items():
        select = s["pool"].reshape(gold_norm.shape)
        curve = bon_curve(select, gold_norm, select, ns, cfg.bon.bootstrap, seed)
        summary[name] = curve["summary"]
        per_prompt[name] = curve["per_prompt"]
        rows += [{"study": "bon", "method": "bon", "reward_model": name} | common | {k: p[k] for k in keys}
                 for p in curve["points"]]
    if cfg.bon.bootstrap and gold_norm.shape[0] >= 2:
        M = max(cfg.warm_sizes)
        for a, b, stat in BON_DIFFS:
            a, b = f"{a}_M{M}", f"{b}_M{M}"
            rows.append({"study": "rm_suite_bon_diff", "a": a, "b": b, "stat": stat} | common
                        | paired_difference(per_prompt[a], per_prompt[b], stat, cfg.bon.bootstrap, seed))
    return rows, summary


def replicate(ctx: dict, cfg, run, rho: float, seed: int) -> list[dict]:
    """One (ρ, seed) replicate: its comparisons, members and aggregates, every row of the suite."""
    rm_cfg = cfg.rm.model_copy(update={"label_noise": rho})
    train, val, flipped = world_preferences(ctx["train_prompts"], ctx["comps"], ctx["gold"], rm_cfg, seed)
    flip = train.subset(np.flatnonzero(flipped))
    sets = ctx["sets"] | {"val_c": (val.prompts, val.chosen), "val_r": (val.prompts, val.rejected),
                          "flip_c": (flip.prompts, flip.chosen), "flip_r": (flip.prompts, flip.rejected)}
    tag = f"[ρ {rho:g}, seed {seed}] " if len(cfg.replicates()) > 1 else ""
    members, tok = train_members(ctx["world"], cfg, run, train, ctx["device"], seed, tag)
    encoded = encode_sets(tok, sets, cfg.rm.max_length)
    scores = selector_scores(members, encoded, cfg)
    if cfg.independent:
        scores |= unrelated_scores(independent_members(ctx["world"], cfg, run, train, ctx["device"], seed, tag),
                                   encoded)
    common = {"label_noise": rho, "seed": seed, "world": ctx["world"].name}
    rows, bon = bon_rows(scores, ctx["gold_norm"], cfg, ctx["ns"], seed, common)
    for name, s in scores.items():
        peak = bon[name]
        rows.append({
            "study": "rm_suite", "reward_model": name, "kind": name.split("_M")[0].rstrip("_0123456789"),
            "members": int(name.rsplit("_M", 1)[1]) if "_M" in name else 1,
            "clean_acc": _accuracy(s["val_c"], s["val_r"]), "flipped_memorised": _accuracy(s["flip_c"], s["flip_r"]),
            "ood_acc": _accuracy(s["ood_c"], s["ood_r"]) if "ood_c" in s else None,
            "bon_peak_gold": peak["peak_gold"], "bon_peak_gold_lo": peak["peak_gold_lo"],
            "bon_peak_gold_hi": peak["peak_gold_hi"], "bon_peak_n": peak["peak_n"],
            "bon_gold_at_max_n": peak["gold_at_max_n"], "train_pairs": len(train), "flipped_pairs": int(flipped.sum()),
        } | common)
    return rows + [r | common for r in comparisons(scores, sets, cfg)]


def replicate_task(cfg, where, ctx: dict, rho: float, seed: int) -> tuple[list[dict], float]:
    """One replicate where the executor runs it: (its rows, seconds). In a worker `ctx` comes without the
    world and device; they are this process's (executor.worker_world)."""
    t = time.perf_counter()
    if "world" not in ctx:
        ctx = ctx | {"world": worker_world(cfg), "device": resolve_device(cfg.device)}
    run = where if isinstance(where, RunDir) else CellRun(where, replicate_id(rho, seed))
    rows = [r | {"replicate": replicate_id(rho, seed)} for r in replicate(ctx, cfg, run, rho, seed)]
    return rows, time.perf_counter() - t


def suite_context(world, cfg, train_prompts, eval_prompts, device) -> dict:
    """What every replicate shares: training samples, the Best-of-n pool and its gold, the OOD pairs."""
    comps, gold, pool, pool_gold = world_pools(world, cfg, train_prompts, eval_prompts)
    N = cfg.data.eval_samples_per_prompt
    sets = {"pool": ([p for p in eval_prompts for _ in range(N)], list(pool.ravel()))}
    if world.ood_prompts and cfg.ood_prompts:
        rng = np.random.default_rng(cfg.seed)
        ood_prompts = [world.ood_prompts[i] for i in rng.permutation(len(world.ood_prompts))[: cfg.ood_prompts]]
        ood_comps, ood_gold = policy_pool(world, ood_prompts, cfg.ood_samples_per_prompt, cfg.sampling,
                                          cfg.seed + 2, "sample OOD", cfg.cache)
        ood = pairs_to_comparisons(ood_prompts, ood_comps, make_pairs(ood_gold, rng, VAL_PAIRS_MAX))
        sets |= {"ood_c": (ood.prompts, ood.chosen), "ood_r": (ood.prompts, ood.rejected)}
    return {"world": world, "device": device, "train_prompts": train_prompts, "comps": comps, "gold": gold,
            "sets": sets, "gold_norm": standardise(pool_gold)[0], "ns": resolve_ns(cfg.bon.ns, N)}


SUITE_MAY_CHANGE = ("seeds", "noise_levels")  # a resumed suite may add replicates, nothing else


def run_rm_suite(cfg, out: str | Path, overwrite: bool = False, resume: bool = False) -> Path:
    """Run (or continue) the RM suite (an RMSuiteConfig) into `out`: every (ρ, seed) replicate appends
    its rows to results.jsonl as it finishes, ending with a done row, so `resume` skips it; table.md
    (pooled over seeds) and the report at the end."""
    from goodhart.report import build_report

    start = time.perf_counter()
    out = Path(out)
    finished = finished_units(cfg, out, overwrite, resume, SUITE_MAY_CHANGE, "replicate", "rm_suite_done", "suite")
    world, device, train_prompts, eval_prompts, run = start_study(
        cfg, out, overwrite, open_run=lambda: open_units(cfg, out, overwrite, finished, SUITE_MAY_CHANGE))
    rows = [r for rs in (finished or {}).values() for r in rs]
    todo = [(rho, seed) for rho, seed in cfg.replicates() if replicate_id(rho, seed) not in (finished or {})]
    ctx = suite_context(world, cfg, train_prompts, eval_prompts, device) if todo else None
    local = cfg.executor == "local"  # in this process: the context and run as they are; else what pickles
    shared = ctx if local or ctx is None else {k: v for k, v in ctx.items() if k not in ("world", "device")}
    where = run if local else run.path
    by_id = {replicate_id(rho, seed): (rho, seed) for rho, seed in todo}

    def finish(rid: str, result: tuple[list[dict], float]) -> None:
        new, seconds = result
        run.append_results(new + [{"study": "rm_suite_done", "replicate": rid, "replicate_s": seconds}])
        rows.extend(new)
        rho, seed = by_id[rid]
        console.print(f"replicate ρ = {rho:g}, seed {seed}: {seconds:.0f} s")

    run_cells([Cell(replicate_id(rho, seed), replicate_task, (cfg, where, shared, rho, seed),
                    run.path / "logs" / f"{replicate_id(rho, seed)}.log") for rho, seed in todo], cfg, finish)
    table = suite_markdown(rows)
    atomic_write_text(run.file("table.md"), table)
    print(table)
    run.log_metrics(phase="summary", **{"time/total_s": time.perf_counter() - start, "replicates": len(todo)})
    build_report(run.path)
    console.print(f"done in {time.perf_counter() - start:.0f} s: {run.path / 'report.html'}")
    run.close()
    return run.path


def replicate_id(rho: float, seed: int) -> str:
    return f"rho{rho:g}-s{seed}"
