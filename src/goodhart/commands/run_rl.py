"""The RL leg of `goodhart run`: RLOO against proxies of the run's family, on the run's own prompts.

Best-of-n from a pool of N reaches only d = sqrt(log N − (N − 1)/N) (2.4 at N = 1,024); RL moves the same
policy much further along d in minutes, which is where a weak proxy's gold falls (docs/lab_world.md). Each
leg is a `policy train` run in <run>/rl/<proxy>: trained on the run's training prompts, evaluated on its
evaluation prompts, gold and proxy in the pool's normalisation (SPEC §5) so both legs share one axis. Its
rows join the run's results with study "rl", the split-half paired fall after the gold peak (SPEC §11,
the same rule as Best-of-n's) in each.
"""

from pathlib import Path

import numpy as np

from goodhart.bon.prompt_stats import paired_fall
from goodhart.config import PolicyTrainConfig
from goodhart.config.load import merge, preset, validate
from goodhart.progress import console
from goodhart.runs import RESULTS, RunDir, read_jsonl

CURVE_KEYS = ("peak_step", "fall", "fall_lo", "fall_hi")  # the curve's summary copied into each of its rows


def chosen(family: list, which: str) -> list:
    """The (name, RM, stats) entries of the family (weakest first, the main proxy last) that RL trains against."""
    return {"weakest": family[:1], "weakest+main": family[:1] + family[1:][-1:], "all": family}[which]


def leg_config(cfg, checkpoint: Path, norm: dict, n_train: int, n_eval: int) -> PolicyTrainConfig:
    """The `policy train` settings of one leg: the world's policy-training preset (sampling engine, lengths)
    under the run's rl.* settings, seed, device and normalisation."""
    r = cfg.rl
    return validate(PolicyTrainConfig, merge(preset("policy_train", cfg.world), {
        "world": cfg.world, "hf": cfg.hf.model_dump(), "device": cfg.device, "precision": cfg.precision,
        "parallel": cfg.parallel, "reward_model": str(checkpoint), "method": "rloo", "seed": cfg.seed,
        "steps": r.steps, "lr": r.lr, "beta_kl": r.beta_kl, "batch_prompts": min(r.batch_prompts, n_train),
        "samples_per_prompt": r.samples_per_prompt, "train_prompts": n_train, "eval_prompts": n_eval,
        "eval_every": r.eval_every, "eval_samples_per_prompt": r.eval_samples_per_prompt,
        "eval_bootstrap": cfg.bon.bootstrap, "norm": norm, "checkpoint_every": max(r.steps, 1), "keep_state": False}))


def leg_rows(points: list[dict], name: str, stats: dict, n_boot: int, seed: int) -> list[dict]:
    """A leg's evaluation rows (step order) as run results: study "rl", the proxy's name and facts, and
    the paired fall of gold from its peak to the last evaluation over the per-prompt curves."""
    points = sorted(points, key=lambda r: r["step"])
    curves = np.array([r["gold_prompts"] for r in points]).T  # (P prompts, L evaluations)
    peak = max(points, key=lambda r: r["gold"])
    summary = {"peak_step": peak["step"]} | (paired_fall(curves, n_boot, seed) if curves.shape[0] >= 4 and n_boot
                                             else {})
    facts = {"study": "rl", "reward_model": name, "rm_pairs": stats["rm/train_pairs"],
             "rm_val_acc": stats["rm/val_accuracy"]}
    return [{k: v for k, v in r.items() if k != "study"} | facts | summary for r in points]


def run_rl(cfg, run: RunDir, family: list, norms: dict, gold_norm: tuple, prompts: tuple) -> list[dict]:
    """Train one RLOO policy per chosen proxy (each checkpoint saved by train_proxies) and return their
    rows; `norms` {proxy name: (shift, scale)} and `gold_norm` are the pool's (result_rows)."""
    from goodhart.policy.train import train_policy

    eval_prompts, train_prompts = prompts
    rows = []
    for name, _, stats in chosen(family, cfg.rl.proxies):
        size = stats["rm/train_pairs"]
        checkpoint = run.path / ("proxy_rm" if name == "proxy" else f"proxy_rm_{size}")
        leg = leg_config(cfg, checkpoint, {"gold": list(gold_norm), "proxy": list(norms[name])},
                         len(train_prompts), len(eval_prompts))
        console.print(f"RL leg: RLOO against {name} ({size} comparisons), {cfg.rl.steps} steps")
        out = train_policy(leg, run.path / "rl" / name, overwrite=True, prompts=(eval_prompts, train_prompts))
        rows += leg_rows(read_jsonl(Path(out) / RESULTS), name, stats, cfg.bon.bootstrap, cfg.seed)
    return rows
