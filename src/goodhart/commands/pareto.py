"""`goodhart policy pareto`: RLOO at several β_KL, J-BOND and BOND as separate `policy train` runs on one
axis (SPEC §8–§9; issue 17). First a reference pool — reference_samples initial-policy samples per
evaluation prompt — gives the one gold and one proxy normalisation every run's rows use, and the
Best-of-n curve on the same prompts and units; then one results table and one gold-vs-d / gold-vs-proxy
figure. Finished sub-runs are skipped and an interrupted one resumes from its checkpoint, so rerunning the
command continues the sweep; the reference pool comes from the sample cache."""

import json
import time
from pathlib import Path

import numpy as np
import yaml

from goodhart.bon.curve import POINT_KEYS, bon_curve, resolve_ns
from goodhart.commands.executor import Cell, run_cells
from goodhart.commands.policy_train import run_policy, run_summary
from goodhart.config.base import SamplingConfig
from goodhart.config.commands import Norm
from goodhart.errors import GoodhartError
from goodhart.policy.rows import eval_row, row_common
from goodhart.policy.train import STATE, split_policy_prompts
from goodhart.progress import console
from goodhart.reward.ensemble import aggregate
from goodhart.reward.load import load_reward_model
from goodhart.reward.normalise import normalisation
from goodhart.runs import CONFIG, RESULTS, RunDir, atomic_write_text, read_jsonl, write_jsonl
from goodhart.sampling.pool import policy_pool

REFERENCE = "reference.json"


def _finished(run: Path, steps: int) -> bool:
    if not (run / RESULTS).is_file() or not (run / "policy").is_dir():
        return False
    return any(r.get("step") == steps for r in read_jsonl(run / RESULTS))


def reference(cfg) -> tuple[dict[str, Norm], list[dict], dict, dict]:
    """The shared reference: the initial policy's samples on the evaluation prompts of every run (the same
    seeded split) and their gold normalisation; per reward model (the main one, "", and each of
    reward_models) its proxy normalisation and the Best-of-n rows it selects (KL bound, prompt bands,
    per-prompt gold); what reference.json records; and the pool's scores (raw gold (P, R), each reward model
    with its member scores (M, P, R)) for the runs' initial rows. Writes nothing (a bad reward model path fails here,
    before the sweep directory is touched)."""
    from goodhart.worlds import load_world

    rms = {name: load_reward_model(path) for name, path in {"": cfg.reward_model, **cfg.reward_models}.items()}
    world = load_world(cfg)
    prompts, _ = split_policy_prompts(cfg, world)
    # the pool's engine is the pools' default (fast), whatever engine draws the policies' rollouts
    pool_sampling = SamplingConfig(**{**cfg.sampling.model_dump(), "engine": SamplingConfig().engine})
    comps, gold = policy_pool(world, prompts, cfg.reference_samples, pool_sampling, cfg.seed + 4, "reference pool")
    flat = [p for p in prompts for _ in range(comps.shape[1])]
    gold_norm = normalisation(gold)
    g = (gold - gold_norm[0]) / gold_norm[1]
    ns = resolve_ns(None, g.shape[1])
    norms, rows, pool = {}, [], {"gold": gold, "world": world.name, "rms": {}}
    for name, rm in rms.items():
        path = cfg.reward_models.get(name, cfg.reward_model)
        members = rm.member_scores(flat, list(comps.ravel()))
        pool["rms"][name] = (rm, members.reshape(len(members), *gold.shape))
        proxy = aggregate(members, rm.method, rm.lam).reshape(gold.shape)
        norm = norms[name] = Norm(gold=gold_norm, proxy=normalisation(proxy))
        p = (proxy - norm.proxy[0]) / norm.proxy[1]
        curve = bon_curve(p, g, p, ns, cfg.bon_bootstrap, cfg.seed)
        per_prompt = curve["per_prompt"]  # (P, L): what matched-KL comparisons read (report.matched)
        common = {"study": "policy", "method": "bon", "cell": "bon" + (f"@{name}" if name else ""),
                  "reward_model": Path(path).name, "world": world.name, "beta_kl": 0.0, "seed": cfg.seed,
                  "gold_shift": norm.gold[0], "gold_scale": norm.gold[1], "proxy_shift": norm.proxy[0],
                  "proxy_scale": norm.proxy[1], "norm_from": "reference pool", "reference_samples": int(g.size)}
        rows += [common | {k: pt[k] for k in POINT_KEYS} | {"gold_prompts": [float(x) for x in per_prompt[:, j]]}
                 for j, pt in enumerate(curve["points"])]
        console.print(f"reference pool{f' ({name})' if name else ''}: {len(prompts)} prompts × {g.shape[1]} "
                      f"initial-policy samples; gold (g − {norm.gold[0]:.4f}) / {norm.gold[1]:.4f}, proxy "
                      f"(r − {norm.proxy[0]:.4f}) / {norm.proxy[1]:.4f}")
    facts = {"norm": {k or "main": v.model_dump(mode="json") for k, v in norms.items()}, "prompts": len(prompts),
             "samples_per_prompt": int(g.shape[1])}
    return norms, rows, facts, pool


def initial_rows(cfg, pool: dict, norms: dict[str, Norm]) -> dict[str, dict]:
    """Each run's step-0 row, the initial policy (KL 0), from the reference pool instead of an evaluation of
    its own: every run of a seed starts from the same policy and would draw the same samples, while the pool
    already holds that policy's samples on the evaluation prompts, scored. Seed i of the grid takes the pool's
    i-th disjoint slice of eval_samples_per_prompt samples per prompt (wrapping when seeds outnumber slices);
    {} when the pool holds fewer per prompt than one evaluation (the runs then evaluate step 0 themselves)."""
    k, slices = cfg.eval_samples_per_prompt, cfg.reference_samples // cfg.eval_samples_per_prompt
    if slices == 0:
        return {}
    seeds = cfg.seeds or [cfg.seed]
    names = {path: name for name, path in cfg.reward_models.items()}
    out = {}
    for run, sub in cfg.runs():
        i, name = seeds.index(sub.seed) % slices, names.get(sub.reward_model, "")
        (rm, members), norm = pool["rms"][name], norms[name]
        gold, mem = pool["gold"][:, k * i: k * (i + 1)].ravel(), members[:, :, k * i: k * (i + 1)]
        zero = np.zeros(gold.size)
        sub = sub.model_copy(update={"norm": norm})
        out[run] = (row_common(sub, pool["world"]) | {"step": 0}
                    | eval_row(sub, rm, gold, mem.reshape(len(mem), -1), {"k1": zero, "k3": zero},
                               norm.model_dump(mode="json"))
                    | {"initial_from": f"reference pool: samples {k * i}–{k * (i + 1) - 1} of each prompt"})
    return out


def _refuse_another_pool(out: Path, facts: dict) -> None:
    """Before anything is written: a directory whose reference pool normalised its rows with other constants
    (other code, model or settings) is refused at once, instead of after every cell was visited with its
    reference.json already overwritten (its finished runs would be skipped and then found stale)."""
    if not (out / REFERENCE).is_file():
        return
    try:
        old = json.loads((out / REFERENCE).read_text()).get("norm", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise GoodhartError(f"{out / REFERENCE} is not a reference-pool record ({e}); use a new --out") from None
    changed = [k for k, v in facts["norm"].items() if k in old and old[k] != v]
    if changed:
        k = changed[0]
        raise GoodhartError(f"{out}: its runs were normalised on another reference pool ({k}: gold shift "
                            f"{old[k]['gold'][0]:.4f} there, {facts['norm'][k]['gold'][0]:.4f} now: other code, "
                            "model or settings); use a new --out, or delete the directory to rerun the grid")


def train_run(sub, run: Path, resume: bool, overwrite: bool) -> float:
    """One grid run (`policy train`) where the executor puts it; returns its minutes."""
    start = time.monotonic()
    run_policy(sub, run, resume=resume, overwrite=overwrite)
    return (time.monotonic() - start) / 60


def run_pareto(cfg, out: str | Path) -> Path:
    """Run every grid cell of a PolicyParetoConfig under out/<name>/ with the reference's normalisation,
    and merge their rows with the reference's Best-of-n rows."""
    from goodhart.report import build_report

    out = Path(out)
    norms, bon_rows, facts, pool = reference(cfg)
    initial = initial_rows(cfg, pool, norms)
    _refuse_another_pool(out, facts)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    atomic_write_text(out / REFERENCE, json.dumps(facts, indent=1))
    by_path = {cfg.reward_model: norms[""]} | {path: norms[name] for name, path in cfg.reward_models.items()}
    jobs = []
    for name, sub in cfg.runs():
        sub = sub.model_copy(update={"norm": by_path[sub.reward_model], "eval_initial": name not in initial})
        run = out / name
        if _finished(run, sub.steps):
            console.print(f"{name}: done already, skipped")
            continue
        jobs.append((name, sub, run, (run / STATE).is_file(), (run / CONFIG).is_file()))
    run_cells([Cell(name, train_run, (sub, run, resume, overwrite), out / "logs" / f"{name}.log")
               for name, sub, run, resume, overwrite in jobs], cfg,
              done=lambda name, minutes: console.print(f"{name}: done in {minutes:.1f} min"),
              start=(lambda name: console.print(f"[bold]{name}[/]")) if cfg.executor == "local" else None)
    cell = {c + (f"-s{s}" if cfg.seeds else ""): c for c, _, _ in cfg.cells() for s in (cfg.seeds or [None])}
    rows = [r | {"run": name, "cell": cell[name]} for name, _ in cfg.runs() for r in _with_initial(
        RunDir(out / name).results(), initial.get(name))]
    stale = sorted({r["run"] for r in rows if r.get("norm_from") != "reference pool"
                    or (r["gold_shift"], r["gold_scale"]) != tuple(norms[""].gold)})
    if stale:
        raise GoodhartError(f"{out}: runs {', '.join(stale)} were measured with another normalisation than this "
                            "reference pool; rerun them (delete their directories)")
    summaries = [{"study": "policy_summary", "run": name, "cell": cell[name], "method": sub.method,
                  "beta_kl": sub.beta_kl, "seed": sub.seed}
                 | run_summary([r for r in rows if r["run"] == name]) for name, sub in cfg.runs()]
    write_jsonl(out / RESULTS, bon_rows + rows + summaries)
    build_report(out)
    console.print(summary_table(summaries))
    return out


def _with_initial(rows: list[dict], initial: dict | None) -> list[dict]:
    """A run's rows with the reference pool's step-0 row first, unless the run evaluated step 0 itself (runs
    of code before initial_rows, or a pool too small)."""
    return rows if initial is None or any(r.get("step") == 0 for r in rows) else [initial, *rows]


def _num(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def summary_table(summaries: list[dict]) -> str:
    """One line per run: final KL, peak and final gold, α / β of the R_rl fit with their intervals."""
    def ci(r, k):
        if r.get(f"fit_{k}") is None:
            return "–"
        lo, hi = r.get(f"fit_{k}_ci") or (None, None)
        return f"{r[f'fit_{k}']:+.3f}" + (f" [{lo:+.3f}, {hi:+.3f}]" if lo is not None else "")

    lines = [f"{'run':<18} {'final KL':>9} {'KL ∝ step^p':>11} {'peak gold':>9} {'final gold':>10}  α_rl, β_rl"]
    lines += [f"{r['run']:<18} {r['final_kl']:>9.3f} {_num(r.get('kl_step_exponent')):>11} "
              f"{r['peak_gold']:>9.3f} {r['gold_at_max_n']:>10.3f}  {ci(r, 'alpha')}, {ci(r, 'beta')}" for r in summaries]
    return "\n".join(lines)
