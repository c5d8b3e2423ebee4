"""`goodhart stopping`: where should Best-of-n stop when gold is unknown?

An ensemble proxy (M members from one shared init, mean of pool-standardised scores) selects
Best-of-n from the evaluation pool. Half the evaluation prompts choose n by each rule, the other
half reveal the gold that choice really gets:
  (a) the largest n;  (b) `recommend`'s hedged n (Gao fit + its lower confidence bound);
  (c) the best soft-BoN λ (softmax(r/λ) over the whole pool; its KL is the tilted distribution's);
  (d) the gold-free alarm: the last n before member disagreement at the pick reaches `alarm_ratio`
      times its value at n = 1 (and a variant on the proxy − ensemble-min gap);
  (f) a fixed KL budget;  (e) the true gold-optimal n on the held-out half.
Only (b), (c) and (e) look at gold, and (b), (c) only on the choosing half.
"""

import time
from pathlib import Path

import numpy as np

from goodhart.bon import kl_bound
from goodhart.bon.curve import bon_curve, values
from goodhart.bon.soft import tilted_kl, tilted_reward
from goodhart.commands.recommend import recommend_n
from goodhart.commands.rm_suite import encode_sets, standardised_scores
from goodhart.commands.run import start_study, world_pools
from goodhart.config import RMTraining
from goodhart.progress import console
from goodhart.reward.data import world_preferences
from goodhart.reward.normalise import standardise
from goodhart.reward.run import train_ensemble
from goodhart.runs import atomic_write_text


def alarm_n(ns, signal, ratio: float) -> int:
    """Largest n before signal(n) first reaches ratio·signal(1) (all of ns if it never does)."""
    ns, signal = np.asarray(ns), np.asarray(signal, dtype=np.float64)
    hit = np.flatnonzero(signal >= ratio * signal[0])
    hit = hit[hit > 0]
    return int(ns[hit[0] - 1]) if hit.size else int(ns[-1])


def fixed_kl_n(ns, kl: float) -> int:
    """Largest n whose Best-of-n KL bound is within the budget."""
    ns = np.asarray(ns)
    return int(ns[np.flatnonzero(kl_bound(ns) <= kl)[-1]])


def _member_scores(members, tok, prompts: list[str], pool: np.ndarray, max_length: int) -> np.ndarray:
    """(M, B, N) member scores, each standardised on the pool (initial policy, SPEC §5)."""
    texts = {"pool": ([p for p in prompts for _ in range(pool.shape[1])], list(pool.ravel()))}
    encoded = encode_sets(tok, texts, max_length)
    return np.stack([standardised_scores(m, encoded)["pool"].reshape(pool.shape) for m in members])


def stopping_table(gold: np.ndarray, members: np.ndarray, cfg, seed: int) -> tuple[list[dict], dict]:
    """Rule rows (rule, n or λ, KL, held-out gold, distance to the held-out gold peak), frontier rows
    (hard BoN for every n and soft BoN for a λ grid, all prompts: gold vs KL) and the curves.

    gold: (B, N) normalised gold; members: (M, B, N) standardised member scores.
    """
    B, N = gold.shape
    ens, var, gap = members.mean(0), members.var(0), members.mean(0) - members.min(0)
    order = np.random.default_rng(seed).permutation(B)
    fit, held = order[: B // 2], order[B // 2 :]
    ns = np.arange(1, N + 1)
    on_fit = bon_curve(ens[fit], gold[fit], ens[fit], ns, extra={"disagreement": var[fit], "gap": gap[fit]})
    gold_fit, dis_fit, gap_fit = (values(on_fit, k) for k in ("gold", "disagreement", "gap"))
    gold_held = values(bon_curve(ens[held], gold[held], ens[held], ns), "gold")
    rec = recommend_n(ns, gold_fit, cfg.tolerance)
    uniform = np.full(N, 1.0 / N)
    soft_fit = [np.mean([tilted_reward(uniform, ens[b], gold[b], lam) for b in fit]) for lam in cfg.lams]
    lam = cfg.lams[int(np.argmax(soft_fit))]
    rows = []

    def add(rule: str, n: int | None, kl: float, g: float, note: str = "") -> None:
        rows.append({"study": "stopping", "rule": rule, "n": n, "kl": float(kl), "d": float(np.sqrt(kl)),
                     "gold": float(g), "note": note})

    add("largest n", N, kl_bound(N), gold_held[-1])
    add("recommend (hedged)", rec["n_hedged"], kl_bound(rec["n_hedged"]), gold_held[rec["n_hedged"] - 1],
        f"tolerance {cfg.tolerance}")
    add("soft BoN, best λ", None, np.mean([tilted_kl(uniform, ens[b], lam) for b in held]),
        np.mean([tilted_reward(uniform, ens[b], gold[b], lam) for b in held]), f"λ = {lam:g} over the pool")
    n_dis = alarm_n(ns, dis_fit, cfg.alarm_ratio)
    add("alarm: disagreement", n_dis, kl_bound(n_dis), gold_held[n_dis - 1], f"ratio {cfg.alarm_ratio:g}")
    n_gap = alarm_n(ns, gap_fit, cfg.alarm_ratio)
    add("alarm: mean − min gap", n_gap, kl_bound(n_gap), gold_held[n_gap - 1], f"ratio {cfg.alarm_ratio:g}")
    n_kl = fixed_kl_n(ns, cfg.fixed_kl)
    add("fixed KL budget", n_kl, kl_bound(n_kl), gold_held[n_kl - 1], f"KL ≤ {cfg.fixed_kl:g}")
    best = int(np.argmax(gold_held)) + 1
    add("true gold optimum", best, kl_bound(best), gold_held[best - 1], "held-out gold (oracle)")
    for r in rows:
        r["gold_below_peak"] = float(gold_held[best - 1] - r["gold"])
        r["kl_from_peak"] = float(r["kl"] - kl_bound(best))
    everyone = np.arange(B)
    frontier = [{"study": "frontier", "method": "bon", "n": int(n), "kl": float(kl_bound(n)), "gold": float(g)}
                for n, g in zip(ns, values(bon_curve(ens, gold, ens, ns), "gold"), strict=True)]
    frontier += [{"study": "frontier", "method": "soft_bon", "lam": float(x),
                  "kl": float(np.mean([tilted_kl(uniform, ens[b], x) for b in everyone])),
                  "gold": float(np.mean([tilted_reward(uniform, ens[b], gold[b], x) for b in everyone]))}
                 for x in sorted({*cfg.lams, *np.geomspace(0.01, 10, 13).tolist()})]
    rows += [r | {"d": float(np.sqrt(r["kl"]))} for r in frontier]
    curves = {"n": ns.tolist(), "kl": kl_bound(ns).tolist(), "gold_fit": gold_fit.tolist(),
              "gold_held": gold_held.tolist(), "proxy_fit": values(on_fit, "proxy").tolist(),
              "disagreement_fit": dis_fit.tolist(), "gap_fit": gap_fit.tolist(),
              "soft_lams": list(cfg.lams), "soft_gold_fit": [float(x) for x in soft_fit]}
    return rows, curves


def table_md(rows: list[dict]) -> str:
    lines = ["| rule | n | KL | held-out gold | below the gold peak | KL − peak KL | note |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['rule']} | {r['n'] if r['n'] is not None else '–'} | {r['kl']:.2f} | {r['gold']:.3f} | "
              f"{r['gold_below_peak']:.3f} | {r['kl_from_peak']:+.2f} | {r['note']} |" for r in rows]
    return "\n".join(lines) + "\n"


def run_stopping(cfg, out: str | Path, overwrite: bool = False) -> Path:
    """Run the comparison into `out`: results.jsonl (rule rows, curves), table.md."""
    import json

    start = time.perf_counter()
    world, device, train_prompts, eval_prompts, run = start_study(cfg, out, overwrite)
    comps, gold, pool, pool_gold = world_pools(world, cfg, train_prompts, eval_prompts)
    train, _, _ = world_preferences(train_prompts, comps, gold, cfg.rm, cfg.seed)
    members, tok = train_ensemble(lambda: world.make_proxy(cfg.seed), train, RMTraining.of(cfg), cfg.members,
                                  cfg.member_dropouts, cfg.seed, device, log=run.log_metrics)
    scores = _member_scores(members, tok, eval_prompts, pool, cfg.rm.max_length)
    rows, curves = stopping_table(standardise(pool_gold)[0], scores, cfg, cfg.seed)
    run.append_results(rows)
    atomic_write_text(run.file("curves.json"), json.dumps(curves))
    table = table_md([r for r in rows if r["study"] == "stopping"])
    from goodhart.report.figures import save_figure
    from goodhart.report.plots import plot_soft_frontier

    if run.writer:
        save_figure(run.path, "soft_vs_hard", plot_soft_frontier(rows))
    atomic_write_text(run.file("table.md"), table)
    print(table)
    run.log_metrics(phase="summary", **{"time/total_s": time.perf_counter() - start})
    console.print(f"done in {time.perf_counter() - start:.0f} s: {run.path / 'table.md'}")
    run.close()
    return run.path
