"""`goodhart policy train` as a command: train (policy.train), then build the run's report."""

from pathlib import Path

import numpy as np

from goodhart.bon.curve import fit_summary
from goodhart.bon.fits import fit_rl
from goodhart.bon.prompt_stats import paired_difference, paired_fall
from goodhart.policy.train import train_policy
from goodhart.progress import console
from goodhart.runs import writer


def run_policy(cfg, out: str | Path, resume: bool = False, overwrite: bool = False) -> Path:
    """train_policy into `out`, then report.html and plots/ from its results (rank 0 writes)."""
    from goodhart.report import build_report

    path = train_policy(cfg, out, resume=resume, overwrite=overwrite)
    if writer():
        build_report(path)
    console.print(f"done: {path / 'report.html'}")
    return path


def run_summary(points: list[dict]) -> dict:
    """A policy run's evaluations (in step order) in one row: the gold peak, the final KL and gold, the KL
    schedule's exponent (log KL on log step), and the
    fit R_rl(d) = d(α − β log d) (SPEC §10) — with prompt-bootstrap intervals from the per-prompt curves
    (`gold_prompts`) when the rows have them (SPEC §11), else OLS on the one mean curve."""
    d, gold = np.array([r["d"] for r in points]), np.array([r["gold"] for r in points])
    peak = int(np.argmax(gold))
    out = {"peak_step": points[peak]["step"], "peak_gold": float(gold[peak]), "peak_kl": points[peak]["kl"],
           "final_kl": points[-1]["kl"], "gold_at_max_n": float(gold[-1]), "proxy_at_max_n": points[-1]["proxy"]}
    grow = [(r["step"], r["kl"]) for r in points if r["step"] > 0 and r["kl"] > 0]
    if len(grow) >= 3:  # the KL schedule: KL ∝ step^p (Gao et al.: roughly quadratic for RL)
        out["kl_step_exponent"] = float(np.polyfit(np.log([s for s, _ in grow]), np.log([k for _, k in grow]), 1)[0])
    per_prompt = [r.get("gold_prompts") for r in points]
    curves = np.array(per_prompt).T if all(per_prompt) and len(per_prompt[0]) >= 2 else gold
    if len(points) >= 3 and np.unique(d[d > 0]).size >= 2:
        out |= fit_summary(fit_rl(d, curves))
    out["final_step"] = points[-1]["step"]
    if curves.ndim == 2 and len(points) >= 3:
        out |= regime(curves)
    return out


def regime(curves: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """What a policy run reached (SPEC §11), from its per-prompt gold (P prompts, L evaluations in step order): the
    split-half fall after its gold peak (bon.prompt_stats.paired_fall: the peak step chosen on half the
    prompts, the fall measured on the others; P ≥ 4), and `converged`: gold at the last evaluation minus
    gold at the one before, paired over prompts, has a 95% interval holding 0 (the run stopped moving
    within what its prompts can resolve)."""
    out = paired_fall(curves, n_boot, seed) if curves.shape[0] >= 4 else {}
    step = paired_difference(curves[:, -1:], curves[:, -2:-1], "last", n_boot, seed)
    return out | {"last_step_gold": step["diff"], "last_step_gold_lo": step["diff_lo"],
                  "last_step_gold_hi": step["diff_hi"], "converged": bool(step["diff_lo"] <= 0 <= step["diff_hi"])}
