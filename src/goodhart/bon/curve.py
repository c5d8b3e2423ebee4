"""One Best-of-n curve: the estimate for every n, its bootstrap band, the peak and the Gao fit.

Every command that reports Best-of-n (`run`, `rm suite`, `study`, `stopping`) builds its rows from
`bon_curve`, so a new column, interval or fit is added here once. Pure numpy (SPEC §2, §3, §10).
Shapes: B prompts, N samples per prompt's pool.
"""

import numpy as np

from goodhart.bon.estimator import bon_estimate, default_ns, kl_bound, prompt_interval
from goodhart.bon.fits import fit_bon
from goodhart.bon.prompt_stats import heldout_check, paired_fall

POINT_KEYS = ("n", "kl", "d", "gold", "gold_lo", "gold_hi", "proxy", "proxy_lo", "proxy_hi")


def resolve_ns(ns, N: int) -> np.ndarray:
    """The n values to report for a pool of N: the configured list, or default_ns(N) when None."""
    return np.asarray(ns, dtype=np.int64) if ns is not None else default_ns(N)


def bon_curve(select, gold, proxy, ns, n_boot: int = 0, seed: int = 0, extra: dict | None = None) -> dict:
    """Prompt-mean Best-of-n of `gold` and `proxy` when `select` picks, for each n in ns.

    m(n) = mean_b E[value of the pick among n of prompt b's N samples] (SPEC §3), against
    d = sqrt(KL bound(n)) (SPEC §2); with n_boot > 0 a seeded bootstrap band (bon_bootstrap), else the
    band is the estimate itself. `extra`: {name: (B, N) values} also averaged at the pick (e.g. member
    disagreement). select, gold, proxy: (B, N).

    Returns {"per_prompt": (B, len(ns)) gold of the pick per prompt, "points": one dict per n (POINT_KEYS,
    then the extra names), "summary": the gold peak
    (n, value, band, KL), gold and proxy at the largest n, and — when there are ≥ 3 points with ≥ 2
    distinct d > 0 — the fit R_bon(d) = d(α − βd) as `fit_*` fields (prompt-bootstrap intervals from
    the per-prompt curves when B ≥ 2, SPEC §11); with B ≥ 4 prompts and n_boot > 0 also the paired
    fall after the peak (`fall`, `fall_lo`, `fall_hi`) and the held-out check of a fit on n ≤ N/8}.
    """
    ns = np.asarray(ns, dtype=np.int64)
    kl = kl_bound(ns)
    per_prompt, per_prompt_proxy = bon_estimate(select, gold, ns), bon_estimate(select, proxy, ns)
    g, p = per_prompt.mean(axis=0), per_prompt_proxy.mean(axis=0)
    # the bands of bon_bootstrap, from the per-prompt estimates already in hand (not estimated again)
    g_lo, g_hi = prompt_interval(per_prompt, n_boot, seed) if n_boot else (g, g)
    p_lo, p_hi = prompt_interval(per_prompt_proxy, n_boot, seed) if n_boot else (p, p)
    extras = {name: bon_estimate(select, v, ns).mean(axis=0) for name, v in (extra or {}).items()}
    points = [dict(zip(POINT_KEYS, (int(n), float(kl[j]), float(np.sqrt(kl[j])), float(g[j]), float(g_lo[j]),
                                    float(g_hi[j]), float(p[j]), float(p_lo[j]), float(p_hi[j])), strict=True))
              | {name: float(v[j]) for name, v in extras.items()} for j, n in enumerate(ns)]
    peak = int(np.argmax(g))
    summary = {"peak_n": int(ns[peak]), "peak_gold": float(g[peak]), "peak_gold_lo": float(g_lo[peak]),
               "peak_gold_hi": float(g_hi[peak]), "peak_kl": float(kl[peak]), "gold_at_max_n": float(g[-1]),
               "proxy_at_max_n": float(p[-1])}
    d = np.sqrt(kl)
    if len(d) >= 3 and np.unique(d[d > 0]).size >= 2:
        summary |= fit_summary(fit_bon(d, per_prompt if len(per_prompt) >= 2 else g, seed=seed))
    if n_boot and len(per_prompt) >= 4:
        summary |= paired_fall(per_prompt, n_boot, seed)
        small = ns <= ns[-1] / 8
        if np.unique(d[small & (d > 0)]).size >= 2 and (~small).any():
            summary |= heldout_check("bon", d, per_prompt, small, seed=seed)
    return {"points": points, "summary": summary, "per_prompt": per_prompt}


def fit_summary(fit) -> dict:
    """A GaoFit as flat result-row fields: fit_alpha, fit_alpha_ci, …, fit_form."""
    return {f"fit_{k}": v for k, v in fit.as_row().items() if k != "form"} | {"fit_form": fit.form}


def values(curve: dict, key: str) -> np.ndarray:
    """One column of a curve's points as an array (e.g. values(curve, "gold"))."""
    return np.array([p[key] for p in curve["points"]])
