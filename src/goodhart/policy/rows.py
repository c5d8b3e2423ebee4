"""A policy run's results rows: what one evaluation of the policy measured (gold and proxy in a fixed
normalisation with intervals over evaluation prompts, KL(π‖π_ref), member disagreement), built from
scores alone so that `policy pareto` can write the initial policy's row from its reference pool."""

from pathlib import Path

import numpy as np
import torch

from goodhart.bon.estimator import prompt_interval
from goodhart.policy.kl import mean_stderr
from goodhart.reward.ensemble import aggregate


def row_common(cfg, world: str) -> dict:
    """The fields every row of a run carries."""
    return {"study": "policy", "method": cfg.method, "reward_model": Path(cfg.reward_model).name, "world": world,
            "beta_kl": cfg.beta_kl, "seed": cfg.seed, "lora": cfg.lora}


def prompt_band(values: np.ndarray, k: int, n_boot: int, seed: int) -> dict:
    """Mean of prompt-major `values` (k per prompt) with its standard error over samples and a percentile
    interval over evaluation prompts (the unit of replication, SPEC §11; the band is the mean without resamples)."""
    per_prompt = values.reshape(-1, k).mean(axis=1, keepdims=True)
    lo, hi = prompt_interval(per_prompt, n_boot, seed) if n_boot and len(per_prompt) >= 2 else ([values.mean()],) * 2
    return {"mean": float(values.mean()), "se": float(values.std() / np.sqrt(len(values))), "lo": float(lo[0]),
            "hi": float(hi[0]), "prompts": [float(x) for x in per_prompt[:, 0]]}


def eval_row(cfg, rm, gold: np.ndarray, members: np.ndarray, kl: dict, norm: dict) -> dict:
    """One evaluation's row from prompt-major scores of cfg.eval_samples_per_prompt samples per prompt: gold
    (n,), the proxy's member scores (M, n) aggregated by `rm`'s method, and per-sequence KL estimates
    {"k1": (n,), "k3": (n,)}; gold and proxy in `norm`'s units ({"gold": (shift, scale), "proxy": …})."""
    k = cfg.eval_samples_per_prompt
    proxy = aggregate(members, rm.method, rm.lam)
    (gs, gd), (ps, pd) = norm["gold"], norm["proxy"]
    g = prompt_band((gold - gs) / gd, k, cfg.eval_bootstrap, cfg.seed)
    p = prompt_band((proxy - ps) / pd, k, cfg.eval_bootstrap, cfg.seed)
    k3, k3_se = mean_stderr(torch.as_tensor(kl["k3"]))
    return {"kl": k3, "kl_se": k3_se, "kl_k1": mean_stderr(torch.as_tensor(kl["k1"]))[0],
            "d": float(np.sqrt(max(k3, 0.0))), "gold": g["mean"], "gold_se": g["se"], "gold_lo": g["lo"],
            "gold_hi": g["hi"], "proxy": p["mean"], "proxy_se": p["se"], "proxy_lo": p["lo"], "proxy_hi": p["hi"],
            "gold_raw": float(gold.mean()), "proxy_raw": float(proxy.mean()), "gold_prompts": g["prompts"],
            "gold_shift": gs, "gold_scale": gd, "proxy_shift": ps, "proxy_scale": pd,
            "norm_from": "reference pool" if cfg.norm is not None else "first evaluation",
            # member disagreement (ensemble proxies): a gold-free overoptimization signal
            "disagreement": float(members.var(axis=0).mean()) if len(members) > 1 else None}
