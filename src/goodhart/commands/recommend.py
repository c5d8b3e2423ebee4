"""`goodhart recommend`: how large an n to use, from the fitted Best-of-n curve and its uncertainty.

Gold-optimal n: the fitted peak d* = α/2β mapped back through KL(n) = log n − (n − 1)/n, with the
interval of d*. Hedged n: the largest n whose lower confidence bound of the fitted gold stays within
`tolerance` of the predicted peak — a choice that the fit's uncertainty cannot push far off the peak.
Validation (runs that kept their samples): fit on half the evaluation prompts, measure the gold that
the recommended n really gets on the other half.
"""

from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from goodhart.bon import bon_estimate, kl_bound
from goodhart.bon.fits import fit_bon
from goodhart.errors import GoodhartError
from goodhart.runs import SAMPLES, RunDir, atomic_write_text, read_jsonl


def n_for_kl(kl: float) -> float:
    """The (real) n with log n − (n − 1)/n = kl; KL(n) increases from 0 at n = 1."""
    if not kl > 0:
        return 1.0
    if kl > 700:  # beyond float range: an interval end this wide means "unbounded"
        return float("inf")
    return float(brentq(lambda n: np.log(n) - (n - 1) / n - kl, 1.0, float(np.exp(kl + 1)) + 1.0))


def recommend_n(ns, gold, tolerance: float = 0.1) -> dict:
    """Gold-optimal n (with interval) and the hedged n from one Best-of-n gold curve.

    ns: (S,) the n of each point; gold: (S,) normalised gold. tolerance in the same units as gold.
    """
    ns = np.asarray(ns, dtype=np.int64)
    d = np.sqrt(kl_bound(ns))
    fit = fit_bon(d, gold)
    grid = np.arange(1, int(ns.max()) + 1)
    lo, _ = fit.predict_interval(np.sqrt(kl_bound(grid)))
    if fit.peak_d is None or fit.peak_d > d.max():  # gold still rising over the data: take the largest n
        return {"n_opt": None, "n_opt_ci": None, "peak_gold_pred": None, "n_hedged": int(ns.max()),
                "gold_lcb_hedged": float(lo[-1]), "alpha": fit.alpha, "beta": fit.beta, "r2": fit.r2}
    peak = fit.peak_reward
    ok = np.flatnonzero(lo >= peak - tolerance)
    n_hedged = int(grid[ok[-1]]) if ok.size else 1
    return {"n_opt": n_for_kl(fit.peak_d ** 2), "n_opt_ci": [n_for_kl(fit.peak_d_ci[0] ** 2),
                                                             n_for_kl(fit.peak_d_ci[1] ** 2)],
            "d_opt": fit.peak_d, "peak_gold_pred": peak, "n_hedged": n_hedged,
            "gold_lcb_hedged": float(lo[n_hedged - 1]), "alpha": fit.alpha, "beta": fit.beta, "r2": fit.r2}


def _pool_from_samples(run: RunDir) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(proxy, gold) of the evaluation pool as (B, N) arrays, normalised as the run's results are.

    samples.jsonl holds the pool prompt by prompt, N = pool_n rows each (as `goodhart run` writes it)."""
    rows = [r for r in read_jsonl(run.file(SAMPLES)) if r.get("split") == "eval"]
    top = next(r for r in run.results() if r.get("reward_model") == "proxy")
    N = int(top["pool_n"])
    if not rows or len(rows) % N:
        raise GoodhartError(f"{run.file(SAMPLES)} does not hold whole pools of N = {N} evaluation samples")
    B = len(rows) // N
    gold = np.array([r["gold"] for r in rows]).reshape(B, N)
    proxy = np.array([r["proxy"] for r in rows]).reshape(B, N)
    prompts = [rows[b * N]["prompt"] for b in range(B)]
    return ((proxy - top["proxy_shift"]) / top["proxy_scale"], (gold - top["gold_shift"]) / top["gold_scale"], prompts)


def recommend_run(run_dir: str | Path, tolerance: float = 0.1, seed: int = 0) -> dict:
    """Recommendation for a `goodhart run` directory, validated on held-out evaluation prompts."""
    run = RunDir(run_dir)
    rows = sorted((r for r in run.results() if r.get("method") == "bon" and r.get("reward_model") == "proxy"),
                  key=lambda r: r["n"])
    if not rows:
        raise GoodhartError(f"{run.path} has no proxy-selected Best-of-n rows (a `goodhart run` directory)")
    out = {"all_prompts": recommend_n([r["n"] for r in rows], [r["gold"] for r in rows], tolerance),
           "tolerance": tolerance}
    if run.file(SAMPLES).is_file():
        proxy, gold, prompts = _pool_from_samples(run)
        if len(prompts) >= 4:
            order = np.random.default_rng(seed).permutation(len(prompts))
            fit_idx, val_idx = order[: len(prompts) // 2], order[len(prompts) // 2 :]
            ns = np.array([r["n"] for r in rows])
            fit_curve = bon_estimate(proxy[fit_idx], gold[fit_idx], ns).mean(axis=0)
            rec = recommend_n(ns, fit_curve, tolerance)
            val_curve = bon_estimate(proxy[val_idx], gold[val_idx], np.arange(1, proxy.shape[1] + 1)).mean(axis=0)
            realised = {k: float(val_curve[int(round(rec[k])) - 1]) for k in ("n_opt", "n_hedged")
                        if rec.get(k) is not None}
            out["validation"] = rec | {"fit_prompts": len(fit_idx), "held_out_prompts": len(val_idx),
                                       "realised_gold": realised, "held_out_best_n": int(np.argmax(val_curve) + 1),
                                       "held_out_best_gold": float(val_curve.max()),
                                       "held_out_gold_at_max_n": float(val_curve[-1])}
    import json

    atomic_write_text(run.file("recommend.json"), json.dumps(out, indent=2))
    return out


def recommend_lines(out: dict) -> list[str]:
    """What `goodhart recommend` prints: each fit's optimal and hedged n, the held-out check, the file."""
    lines = []
    for name, rec in (("all prompts", out["all_prompts"]), ("fit half", out.get("validation"))):
        if rec is None:
            continue
        opt = (f"gold-optimal n ≈ {rec['n_opt']:.0f} [{rec['n_opt_ci'][0]:.0f}, {rec['n_opt_ci'][1]:.0f}], predicted "
               f"peak gold {rec['peak_gold_pred']:.3f}" if rec["n_opt"] is not None else "no peak inside the measured n")
        lines.append(f"{name}: {opt}; hedged n = {rec['n_hedged']} (gold lower bound {rec['gold_lcb_hedged']:.3f})")
    val = out.get("validation")
    if val:
        got = ", ".join(f"{k} → {v:.3f}" for k, v in val["realised_gold"].items())
        lines.append(f"held-out prompts ({val['held_out_prompts']}): realised gold {got}; best there "
                     f"{val['held_out_best_gold']:.3f} at n = {val['held_out_best_n']}, at the largest n "
                     f"{val['held_out_gold_at_max_n']:.3f}")
    return lines
