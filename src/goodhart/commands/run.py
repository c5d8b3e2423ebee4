"""`goodhart run`: the default gold-vs-proxy Best-of-n overoptimization study.

1. sample completions of training prompts from the initial policy;
2. label within-prompt pairs with the gold reward and train a family of Bradley–Terry proxy RMs on
   nested subsets of them (family_pairs, then all rm.max_pairs: the main proxy);
3. sample a fresh pool of N completions for each held-out evaluation prompt, score with gold and proxy;
4. normalise gold and each proxy on that pool (SPEC §5) and estimate Best-of-n gold and proxy for
   every n ≤ N and every proxy (SPEC §3) against d = sqrt(KL bound) (SPEC §2), with prompt-bootstrap
   bands, the peak and the paired fall after it (SPEC §11);
5. with rl.steps > 0 (the lab world's default), train RLOO against the weakest and the main proxy on the
   same prompts (commands/run_rl.py): RL reaches d far beyond the pool's Best-of-n;
6. write the run directory and the report; print one sentence per curve and a short table.
"""

import time
from pathlib import Path

import numpy as np
import torch

from goodhart import dist
from goodhart.bon.curve import bon_curve, resolve_ns
from goodhart.commands import proxy_cache
from goodhart.commands.run_rl import run_rl
from goodhart.config import RMTraining, RunConfig
from goodhart.device import resolve_device, seed_everything
from goodhart.errors import GoodhartError
from goodhart.progress import console
from goodhart.report.tables import curve_lines, curve_table
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


def start_study(cfg, out: str | Path, overwrite: bool, open_run=None):
    """Seed, choose the device, load the world, split its prompts, create the run dir (or `open_run()`
    it, e.g. to resume), move the policy.

    Returns (world, device, train_prompts, eval_prompts, run). Nothing is written before the world loads.
    """
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    world = load_world(cfg)
    train_prompts, eval_prompts = split_prompts(world.prompts, cfg.data, cfg.seed)
    run = open_run() if open_run else RunDir.create(out, cfg.model_dump(mode="json"), overwrite=overwrite)
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


def train_proxies(world: World, cfg: RunConfig, run: RunDir, prompts: list[str], comps: np.ndarray,
                  gold: np.ndarray, device: torch.device) -> list[tuple[str, RewardModel, dict]]:
    """Gold-labelled comparisons → the family of Bradley–Terry proxies: one per cfg.family_pairs entry P,
    trained on the first P comparisons (a uniform subset: make_pairs draws them in random order), then the
    main one on all rm.max_pairs; all validated on the same held-out prompts' pairs and saved (run/proxy_rm
    for the main one, run/proxy_rm_<P> for the others). Returns [(name, RM, stats)], weakest first."""
    train, val, flipped = world_preferences(prompts, comps, gold, cfg.rm, cfg.seed)
    skipped = sorted(p for p in cfg.family_pairs if p >= len(train))
    if skipped:
        console.print(f"family_pairs {skipped}: skipped, not below the main proxy's {len(train)} comparisons")
    family, training = [], RMTraining.of(cfg)
    data = proxy_cache.data_digest(prompts, comps, gold) if proxy_cache.usable(cfg) else None
    for size in sorted(p for p in cfg.family_pairs if p < len(train)) + [len(train)]:
        name = "proxy" if size == len(train) else f"proxy_{size}"
        folder = "proxy_rm" if name == "proxy" else f"proxy_rm_{size}"
        cached = proxy_cache.cached_proxy_dir(world, proxy_cache.proxy_key(world, cfg, training, data, size)) \
            if data else None
        hit = proxy_cache.load_cached(cached, run, folder, name) if cached else None
        if hit:
            model, tok, stats = hit
            model.to(device)
        else:
            idx, log = np.arange(size), []
            model, tok = world.make_proxy(cfg.seed)
            model.to(device)
            stats = fit_reward_model(model, tok, train.subset(idx), val, flipped[idx], training, cfg.seed,
                                     log=lambda proxy=name, log=log, **m: (run.log_metrics(proxy=proxy, **m),
                                                                           log.append(m)))
            card = {"trained on": f"{size} gold-labelled comparisons ({world.name} world, gold {world.gold_name})",
                    "label noise ρ": cfg.rm.label_noise,
                    "validation accuracy": f"{stats['rm/val_accuracy']:.3f} on {stats['rm/val_pairs']} pairs"}
            saved = save_checkpoint(run, folder, model, tok, card=card)
            if cached and run.writer:
                proxy_cache.store(cached, saved, stats, log, card)
        console.print(f"{name}: {size} comparisons, validation accuracy {stats['rm/val_accuracy']:.3f} on "
                      f"{stats['rm/val_pairs']} pairs" + (" (trained earlier: from the cache)" if hit else ""))
        family.append((name, RewardModel([(model, tok)], name=name), stats))
    return family


def sample_rows(train: tuple, evaluation: tuple, proxies: dict[str, np.ndarray]) -> list[dict]:
    """samples.jsonl rows: train (prompts, (B, K) completions, gold) — completions None for an own proxy —
    then eval (prompts, (E, N) completions, raw gold) with each proxy's raw score under its name."""
    prompts, comps, gold = train
    rows = [{"split": "train", "prompt": p, "completion": c, "gold": float(g)}
            for p, cs, gs in zip(prompts, comps, gold, strict=True) for c, g in zip(cs, gs, strict=True)
            ] if comps is not None else []
    eval_prompts, eval_comps, eval_gold = evaluation
    return rows + [{"split": "eval", "prompt": p, "completion": eval_comps[b, i], "gold": float(eval_gold[b, i])}
                   | {name: float(v[b, i]) for name, v in proxies.items()}
                   for b, p in enumerate(eval_prompts) for i in range(eval_comps.shape[1])]


CURVE_KEYS = ("peak_n", "fall", "fall_lo", "fall_hi")  # a curve's summary copied into each of its rows


def bon_rows(gold: np.ndarray, selectors: dict[str, tuple[np.ndarray, dict]], ns: np.ndarray, n_boot: int,
             seed: int) -> list[dict]:
    """Result rows for Best-of-n picked by each proxy (its own normalised score as `proxy`; `facts` such as
    its data size go into each row), then picked by gold (the oracle ceiling, scored by the main proxy)."""
    rows = []
    for name, (proxy, facts) in selectors.items():
        curve = bon_curve(proxy, gold, proxy, ns, n_boot, seed)
        summary = {k: curve["summary"][k] for k in CURVE_KEYS if k in curve["summary"]}
        rows += [{"study": "bon", "method": "bon", "reward_model": name} | facts | summary | point
                 for point in curve["points"]]
    main, facts = selectors["proxy"]
    rows += [{"study": "bon", "method": "bon", "reward_model": "gold"} | facts | point
             for point in bon_curve(gold, gold, main, ns, n_boot, seed)["points"]]
    return rows


def checked_inputs(cfg: RunConfig) -> RewardModel | None:
    """Refuse settings `goodhart run` cannot honour and open the user's own proxy (None: one is trained),
    all before the run directory is created."""
    if cfg.parallel == "fsdp":
        raise GoodhartError("parallel=fsdp is for `rm train` and `policy train` (models too large for one device); "
                            "goodhart run's proxy RM trains with DDP under torchrun: use parallel=ddp")
    check_engine(cfg.sampling.engine)
    return own_proxy(cfg) if cfg.proxy else None


def result_rows(world: World, cfg: RunConfig, family: list, raw: dict[str, np.ndarray], gold_raw: np.ndarray,
                n_prompts: int) -> tuple[list[dict], dict]:
    """Normalise gold and each proxy on the pool (SPEC §5) and build every curve's rows (bon_rows), each
    with the run's facts and its proxy's; returns (rows, {proxy name: (shift, scale)})."""
    gold, g_shift, g_scale = standardise(gold_raw)
    N = gold_raw.shape[1]
    common = {"world": world.name, "gold_reward": world.gold_name, "gold_shift": g_shift, "gold_scale": g_scale,
              "label_noise": cfg.rm.label_noise, "pool_n": N, "eval_prompts": n_prompts, "seed": cfg.seed}
    selectors, norms = {}, {}
    for name, rm, stats in family:
        proxy, p_shift, p_scale = standardise(raw[name])
        norms[name] = (p_shift, p_scale)
        selectors[name] = (proxy, {
            "rm_backbone": rm.name if cfg.proxy else world.proxy_name, "rm_params": stats["rm/params"],
            "rm_pairs": stats["rm/train_pairs"], "rm_val_acc": stats["rm/val_accuracy"],
            "proxy_shift": p_shift, "proxy_scale": p_scale})
    rows = bon_rows(gold, selectors, resolve_ns(cfg.bon.ns, N), cfg.bon.bootstrap, cfg.seed)
    return [common | r for r in rows], norms


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
        family = [("proxy", own.to(device), None)]
    else:
        train_comps, train_gold = policy_pool(world, train_prompts, cfg.data.train_samples_per_prompt, cfg.sampling,
                                              cfg.seed, "sample train", cfg.cache)
    t_sample_train = time.perf_counter() - t
    if not cfg.proxy:
        family = train_proxies(world, cfg, run, train_prompts, train_comps, train_gold, device)

    t = time.perf_counter()
    N = cfg.data.eval_samples_per_prompt
    eval_comps, gold_raw = policy_pool(world, eval_prompts, N, cfg.sampling, cfg.seed + 1, "sample eval pool",
                                       cfg.cache)
    t_sample_eval = time.perf_counter() - t
    flat_prompts = [p for p in eval_prompts for _ in range(N)]
    raw = {name: dist.map_pairs(lambda p, c, rm=rm: rm.score(p, c, max_length=cfg.rm.max_length), flat_prompts,
                                list(eval_comps.ravel())).reshape(gold_raw.shape) for name, rm, _ in family}
    if cfg.proxy:
        rm = family[0][1]
        family[0] = ("proxy", rm, own_proxy_stats(rm, eval_prompts, eval_comps, gold_raw, raw["proxy"], cfg.seed))
        console.print(f"own proxy {rm.name}: accuracy {family[0][2]['rm/val_accuracy']:.3f} on "
                      f"{family[0][2]['rm/val_pairs']} gold-labelled pairs of the evaluation pool")

    rows, norms = result_rows(world, cfg, family, raw, gold_raw, len(eval_prompts))
    run.append_results(rows)
    g_shift, g_scale = rows[0]["gold_shift"], rows[0]["gold_scale"]
    t = time.perf_counter()
    if cfg.rl.steps:
        rl_rows = run_rl(cfg, run, family, norms, (g_shift, g_scale), (eval_prompts, train_prompts))
        run.append_results(rl_rows)
        rows += rl_rows
    t_rl = time.perf_counter() - t

    samples = sample_rows((train_prompts, train_comps, train_gold), (eval_prompts, eval_comps, gold_raw), raw)
    main_stats = family[-1][2]
    run.log_metrics(phase="summary", **main_stats, **{
        "time/sample_train_s": t_sample_train, "time/sample_eval_s": t_sample_eval, "time/rl_s": t_rl,
        "time/total_s": time.perf_counter() - start, "norm/gold_shift": g_shift, "norm/gold_scale": g_scale,
        "norm/proxy_shift": norms["proxy"][0], "norm/proxy_scale": norms["proxy"][1],
        "processes": dist.world_size(),
        "family": {name: {"train_pairs": st["rm/train_pairs"], "val_accuracy": st["rm/val_accuracy"]}
                   for name, _, st in family},
    })
    if run.writer:  # the findings go to stdout (progress and logs go to stderr)
        write_jsonl(run.file(SAMPLES), samples)
        build_report(run.path)
        print("\n".join(curve_lines(rows)) + "\n" + curve_table(rows), flush=True)
    console.print(f"done in {time.perf_counter() - start:.0f} s: {run.path / 'report.html'}")
    run.close()
    return run.path
