"""`goodhart study`: Gao et al.'s overoptimization sweep on a world (SPEC §10).

1. sample the training and evaluation pools once from the initial policy (content-addressed cache);
2. for every grid cell (RM size × data size × label noise × seed): gold-labelled comparisons →
   Bradley–Terry proxy cut to that size (one RM, or `members` RMs from one shared init for ens/warm),
   validation accuracy and its binomial test against chance;
3. every proxy selects Best-of-n from the shared pool: gold and proxy for all n against
   d = sqrt(KL bound), bootstrap bands, the fit R_bon(d) = d(α − βd) and its peak;
4. optional RL / J-BOND cells (`goodhart policy train` against a cell's RM), fitted with R_rl;
5. each finished cell appends its rows to results.jsonl in one write; cells already there are
   skipped, so `--resume` continues an interrupted study; report.html at the end.
"""

import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from goodhart.bon.curve import bon_curve, resolve_ns
from goodhart.bon.fits import chance_test
from goodhart.commands.executor import Cell as CellTask
from goodhart.commands.executor import CellRun, run_cells, worker_world
from goodhart.commands.live import StudyTable
from goodhart.commands.rm_suite import encode_sets, standardised_scores
from goodhart.commands.run import split_prompts
from goodhart.config import PolicyTrainConfig, RMTraining, StudyConfig, merge, preset, validate
from goodhart.device import resolve_device, seed_everything
from goodhart.errors import GoodhartError
from goodhart.progress import console
from goodhart.reward.data import world_preferences
from goodhart.reward.ensemble import aggregate
from goodhart.reward.normalise import standardise
from goodhart.reward.run import train_ensemble
from goodhart.reward.train import pair_correct
from goodhart.reward.warm import weight_average
from goodhart.runs import (
    CONFIG,
    RESULTS,
    RunDir,
    finished_units,
    open_units,
    read_jsonl,
    save_checkpoint,
)
from goodhart.sampling.pool import policy_pool
from goodhart.scoring import EncodedPairs, encode_for_scoring
from goodhart.worlds.family import count_params, shrink, sized_config

ORACLE = "oracle"
MAY_CHANGE = ("grid", "policy")  # a resumed study may grow its grid and policy cells, nothing else


@dataclass(frozen=True)
class Cell:
    """One proxy RM of the grid (trained once; all its aggregations are measured together)."""

    rm_size: str
    data_size: int
    label_noise: float
    seed: int

    @property
    def id(self) -> str:
        return f"{self.rm_size}-n{self.data_size}-rho{self.label_noise:g}-s{self.seed}"


@dataclass(frozen=True)
class PolicyCell:
    """One policy-optimisation run against the single RM of grid cell `rm_cell`."""

    method: str
    kl_penalty: float
    rm_cell: Cell

    @property
    def id(self) -> str:
        return f"{self.method}-b{self.kl_penalty:g}-{self.rm_cell.id}"


def grid_cells(cfg: StudyConfig) -> list[Cell]:
    """Cells in run order: seed, noise, then cheap before expensive (data size, then RM size)."""
    g = cfg.grid
    return [Cell(s, d, r, seed) for seed in g.seeds for r in g.label_noise for d in sorted(g.data_sizes)
            for s in g.rm_sizes]


def policy_cells(cfg: StudyConfig, cells: list[Cell]) -> list[PolicyCell]:
    p = cfg.policy
    sizes = set(p.rm_sizes or cfg.grid.rm_sizes)
    data = set(p.data_sizes or [max(cfg.grid.data_sizes)])
    seeds = set(p.seeds or cfg.grid.seeds)
    return [PolicyCell(m, b, c) for c in cells if c.rm_size in sizes and c.data_size in data and c.seed in seeds
            for m in p.methods for b in p.kl_penalties]


@dataclass
class Pools:
    """What every cell shares: the world, the prompt split, training samples and the BoN pool."""

    world: object
    device: object
    train_prompts: list[str]
    comps: np.ndarray  # (B, K) training completions
    gold: np.ndarray  # (B, K) their gold scores
    eval_prompts: list[str]
    pool: np.ndarray  # (E, N) evaluation completions
    gold_norm: np.ndarray  # (E, N) gold standardised on the pool (SPEC §5)
    ns: np.ndarray
    gold_raw: tuple[float, float] = (0.0, 1.0)  # the standardisation (shift, scale): raw gold = shift + scale × z
    policy_params: int = 0
    encoded: dict = field(default_factory=dict, repr=False, compare=False)  # encoded_pool's, by tokenizer

    def pool_texts(self) -> tuple[list[str], list[str]]:
        N = self.pool.shape[1]
        return [p for p in self.eval_prompts for _ in range(N)], list(self.pool.ravel())

    def encoded_pool(self, tok, max_length: int) -> EncodedPairs:
        """The pool tokenised for scoring, once per tokenizer for every cell of this process (each cell's members
        score the same pool with the world's proxy tokenizer)."""
        key = (type(tok).__name__, tok.name_or_path, len(tok), max_length)
        if key not in self.encoded:
            self.encoded[key] = encode_for_scoring(tok, *self.pool_texts(), max_length=max_length)
        return self.encoded[key]

    def portable(self) -> "Pools":
        """These pools without the world and device, to send to an executor worker (attach() restores them)."""
        return replace(self, world=None, device=None, encoded={})


def _available_pairs(gold: np.ndarray) -> int:
    """Within-prompt pairs with distinct gold (what deterministic labels can use)."""
    return int(sum((len(g) ** 2 - sum(c * c for c in np.unique(g, return_counts=True)[1])) // 2 for g in gold))


def prepare(cfg: StudyConfig) -> Pools:
    from goodhart import dist
    from goodhart.worlds import load_world

    if dist.launched():
        raise GoodhartError("goodhart study spreads its cells with its executor (executor: ray); run it without torchrun (its policy "
                            "cells can be run as `policy train` under torchrun)")
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    world = load_world(cfg)
    train_prompts, eval_prompts = split_prompts(world.prompts, cfg.data, cfg.seed)
    n_fit = len(train_prompts) - max(1, int(round(cfg.rm.val_fraction * len(train_prompts))))
    K = cfg.data.train_samples_per_prompt
    if max(cfg.grid.data_sizes) > n_fit * K * (K - 1) // 2:
        raise GoodhartError(f"grid.data_sizes goes up to {max(cfg.grid.data_sizes)} but {n_fit} training prompts × "
                            f"{K} samples give at most {n_fit * K * (K - 1) // 2} comparisons; raise "
                            "data.train_prompts or data.train_samples_per_prompt")
    backbone = world.make_proxy(cfg.seed)[0].config
    for size in cfg.grid.rm_sizes.values():  # refuse an impossible size before any work
        sized_config(backbone, size.layers, size.hidden, size.intermediate)
    world.policy.to(device)
    comps, gold = policy_pool(world, train_prompts, K, cfg.sampling, cfg.seed, "sample train", cfg.cache)
    have = _available_pairs(gold[:n_fit])
    if cfg.rm.labels == "deterministic" and max(cfg.grid.data_sizes) > have:
        raise GoodhartError(f"grid.data_sizes goes up to {max(cfg.grid.data_sizes)} but the training samples give "
                            f"only {have} comparisons with distinct gold; raise data.train_prompts or "
                            "data.train_samples_per_prompt")
    N = cfg.data.eval_samples_per_prompt
    pool, pool_gold = policy_pool(world, eval_prompts, N, cfg.sampling, cfg.seed + 1, "sample eval pool", cfg.cache)
    world.policy.to("cpu")  # the policy is not needed again until a policy cell
    gold_norm, shift, scale = standardise(pool_gold)
    return Pools(world, device, train_prompts, comps, gold, eval_prompts, pool, gold_norm, resolve_ns(cfg.bon.ns, N),
                 (float(shift), float(scale)), sum(p.numel() for p in world.policy.parameters()))


def attach(cfg: StudyConfig, pools: Pools) -> Pools:
    """The pools with this process's world and device (executor.worker_world); in-process pools as they are."""
    if pools.world is not None:
        return pools
    return replace(pools, world=worker_world(cfg), device=resolve_device(cfg.device))


def pool_curve(select: np.ndarray, pools: Pools, n_boot: int, seed: int, extra: dict | None = None) -> dict:
    """bon_curve on the shared pool: gold, and the selector's own score as the proxy."""
    return bon_curve(select, pools.gold_norm, select, pools.ns, n_boot, seed, extra)


def _train_members(cfg: StudyConfig, pools: Pools, cell: Cell, train, run: RunDir) -> list:
    spec = cfg.grid.rm_sizes[cell.rm_size].model_dump()
    lr = spec.pop("lr") or cfg.rm.lr
    M = cfg.members if {"ens", "warm"} & set(cfg.grid.aggregation) else 1

    def make():  # every member starts from the same weights (WARM needs a shared init)
        base, tok = pools.world.make_proxy(cell.seed)
        return shrink(base, **spec), tok

    return train_ensemble(make, train, RMTraining.of(cfg, lr=lr), M, cfg.member_dropouts, cell.seed, pools.device,
                          log=lambda **kw: run.log_metrics(cell=cell.id, **kw))


def sample_rows(cfg: StudyConfig, pools: Pools, cell_id: str, select: np.ndarray, peak_n: int) -> list[dict]:
    """Best-of-n picks at n = 1, the gold peak and the largest n for a few eval prompts (seeded subsets)."""
    rng = np.random.default_rng(zlib.crc32(cell_id.encode()))
    rows = []
    for b in range(min(cfg.samples_per_cell, len(pools.eval_prompts))):
        for label, n in (("n=1", 1), ("peak", peak_n), ("max n", int(pools.ns[-1]))):
            subset = rng.choice(pools.pool.shape[1], size=n, replace=False)
            i = subset[np.argmax(select[b, subset])]
            rows.append({"study": "study_sample", "cell": cell_id, "prompt": pools.eval_prompts[b], "n": n,
                         "at": label, "completion": str(pools.pool[b, i]), "gold": float(pools.gold_norm[b, i]),
                         "proxy": float(select[b, i])})
    return rows


def run_cell(cfg: StudyConfig, pools: Pools, cell: Cell, run: RunDir, save_rm: bool) -> tuple[list[dict], str]:
    """Train the cell's RM(s), measure each aggregation; returns (rows, one-line summary)."""
    rm_cfg = cfg.rm.model_copy(update={"max_pairs": cell.data_size, "label_noise": cell.label_noise})
    train, val, flipped = world_preferences(pools.train_prompts, pools.comps, pools.gold, rm_cfg, cell.seed)
    t = time.perf_counter()
    members, tok = _train_members(cfg, pools, cell, train, run)
    train_s = time.perf_counter() - t
    texts = {"val_c": (val.prompts, val.chosen), "val_r": (val.prompts, val.rejected)}
    encoded = encode_sets(tok, texts, cfg.rm.max_length) | {"pool": pools.encoded_pool(tok, cfg.rm.max_length)}
    per_member = [standardised_scores(m, encoded) for m in members]
    rms = {}
    for agg in cfg.grid.aggregation:
        if agg == "single":
            rms["single"] = per_member[0]
        elif agg == "ens":
            rms[f"ens_M{len(members)}"] = {k: aggregate(np.stack([s[k] for s in per_member])) for k in encoded}
        else:
            rms[f"warm_M{len(members)}"] = standardised_scores(weight_average(members), encoded)
    non_embed, total = count_params(members[0])
    common = {"study": "study", "cell": cell.id, "method": "bon", "world": pools.world.name,
              "rm_size": cell.rm_size, "rm_params": non_embed, "rm_params_total": total,
              "data_size": cell.data_size, "rm_pairs": len(train), "label_noise": cell.label_noise, "seed": cell.seed}
    # member disagreement at the pick: a gold-free overoptimization signal (ensembles only)
    var = np.var(np.stack([m["pool"] for m in per_member]), axis=0).reshape(pools.pool.shape)
    rows, heads = [], []
    for name, s in rms.items():
        select = s["pool"].reshape(pools.pool.shape)
        curve = pool_curve(select, pools, cfg.bon.bootstrap, cell.seed,
                           {"disagreement": var} if len(members) > 1 else None)
        hits = pair_correct(s["val_c"], s["val_r"])
        correct = int(np.sum(hits == 1.0))
        summary = {"val_acc": float(np.mean(hits)), "val_correct": correct,
                   "val_pairs": len(val), "chance_p": chance_test(correct, len(val)), "train_s": train_s,
                   "members": len(members) if name != "single" else 1}
        rows += [common | {"aggregation": name} | p for p in curve["points"]]
        rows.append(common | {"study": "study_cell", "aggregation": name} | summary | curve["summary"])
        if name == next(iter(rms)):
            rows += sample_rows(cfg, pools, cell.id, select, curve["summary"]["peak_n"])
        heads.append(f"{name}: acc {summary['val_acc']:.3f}, peak gold {curve['summary']['peak_gold']:.2f} "
                     f"@ n={curve['summary']['peak_n']}")
    if save_rm:
        cell_dir = run.path / "cells" / cell.id
        cell_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(RunDir(cell_dir), "rm", members[0], tok, card={
            "study cell": cell.id, "trained on": f"{len(train)} comparisons", "label noise ρ": cell.label_noise,
            "validation accuracy": next(r["val_acc"] for r in rows if r["study"] == "study_cell")})
    return rows, "; ".join(heads)


def oracle_rows(cfg: StudyConfig, pools: Pools) -> list[dict]:
    """Best-of-n selected by gold itself: the ceiling every proxy is measured against. Its summary row also
    carries the pool's gold standardisation and the policy's size, so studies of two policies can be compared
    in raw gold units (the policy-size claims)."""
    curve = pool_curve(pools.gold_norm, pools, cfg.bon.bootstrap, cfg.seed)
    common = {"study": "study", "cell": ORACLE, "method": "bon", "aggregation": "gold", "world": pools.world.name}
    pool = {"gold_shift": pools.gold_raw[0], "gold_scale": pools.gold_raw[1], "policy_params": pools.policy_params}
    return [common | p for p in curve["points"]] + [common | {"study": "study_cell"} | curve["summary"] | pool]


def policy_cell_config(cfg: StudyConfig, pcell: PolicyCell, reward_model: str) -> PolicyTrainConfig:
    """The `policy train` config of a policy cell: the world's preset < policy.settings < the cell's own keys.
    Only the sampling keys a rollout uses are passed (batch size and engine are the pools')."""
    sampling = {k: getattr(cfg.sampling, k) for k in ("max_new_tokens", "temperature", "top_p")}
    settings = merge(merge(preset("policy_train", cfg.world), cfg.policy.settings), {
        "world": cfg.world, "reward_model": reward_model, "method": pcell.method, "beta_kl": pcell.kl_penalty,
        "seed": pcell.rm_cell.seed, "device": cfg.device, "sampling": sampling, "hf": cfg.hf.model_dump()})
    try:
        return validate(PolicyTrainConfig, settings)
    except GoodhartError as e:
        raise GoodhartError(f"policy.settings of cell {pcell.id}: {e}") from None


def run_policy_cell(cfg: StudyConfig, pcell: PolicyCell, run: RunDir, rm_rows: list[dict]) -> tuple[list[dict], str]:
    """`goodhart policy train` against the cell's saved RM (resuming its own checkpoint), as study rows."""
    from goodhart.commands.policy_train import run_policy, run_summary
    from goodhart.policy.train import STATE

    sub = run.path / "cells" / pcell.id
    pcfg = policy_cell_config(cfg, pcell, str(run.path / "cells" / pcell.rm_cell.id / "rm"))
    run_policy(pcfg, sub, resume=(sub / STATE).is_file(), overwrite=(sub / CONFIG).is_file())
    points = [r for r in read_jsonl(sub / RESULTS) if "step" in r]
    rm_row = next(r for r in rm_rows if r["study"] == "study_cell" and r["aggregation"] == "single")
    common = {"study": "study", "cell": pcell.id, "method": pcell.method, "kl_penalty": pcell.kl_penalty,
              "world": cfg.world, "aggregation": "single"} | {k: rm_row[k] for k in (
                  "rm_size", "rm_params", "rm_params_total", "data_size", "label_noise", "seed")}
    keys = ("step", "kl", "d", "gold", "gold_se", "gold_lo", "gold_hi", "proxy", "proxy_se")
    rows = [common | {k: r[k] for k in keys if k in r} for r in points]
    summary = run_summary(points)
    rows.append(common | {"study": "study_cell"} | summary)
    return rows, f"peak gold {summary['peak_gold']:.2f} at KL {summary['peak_kl']:.2f}, final KL {rows[-2]['kl']:.2f}"


def _cell_run(where: RunDir | Path, cell_id: str) -> RunDir:
    """The study's run itself in this process; a cell's view of it (CellRun) in an executor worker."""
    return where if isinstance(where, RunDir) else CellRun(where, cell_id)


def rm_cell_task(cfg: StudyConfig, where: RunDir | Path, pools: Pools, cell: Cell, save_rm: bool):
    """An RM cell where the executor runs it (this process, or a worker: see attach)."""
    return run_cell(cfg, attach(cfg, pools), cell, _cell_run(where, cell.id), save_rm)


def policy_cell_task(cfg: StudyConfig, where: RunDir | Path, pools: Pools, pcell: PolicyCell, rm_rows: list[dict]):
    """A policy cell where the executor runs it; its RM cell is trained again first if it finished without
    saving its RM (a study whose policy cells were added on --resume)."""
    run = _cell_run(where, pcell.id)
    if not (run.path / "cells" / pcell.rm_cell.id / "rm").is_dir():
        run_cell(cfg, attach(cfg, pools), pcell.rm_cell, _cell_run(where, pcell.rm_cell.id), save_rm=True)
    return run_policy_cell(cfg, pcell, run, rm_rows)


def run_study(cfg: StudyConfig, out: str | Path, overwrite: bool = False, resume: bool = False) -> Path:
    """Run (or continue) the study into `out`; returns its path. See the module docstring."""
    from goodhart.report import build_report

    start = time.perf_counter()
    cells = grid_cells(cfg)
    pcells = policy_cells(cfg, cells)
    for pcell in pcells:  # policy settings are checked before any cell runs, not when their turn comes
        policy_cell_config(cfg, pcell, "-")
    previous = finished_units(cfg, Path(out), overwrite, resume, MAY_CHANGE, "cell", "study_cell")
    finished = dict(previous or {})
    todo = [c for c in [ORACLE, *cells, *pcells] if (c if isinstance(c, str) else c.id) not in finished]
    pools = prepare(cfg) if todo else None  # bad settings fail here, before the directory is touched
    run = open_units(cfg, Path(out), overwrite, previous, MAY_CHANGE)
    console.print(f"[bold]goodhart study[/] world={cfg.world}: {len(cells)} RM cells, {len(pcells)} policy cells, "
                  f"{len(cells) + len(pcells) + 1 - len(todo)} done already → {run.path}")
    if todo:
        needs_rm = {p.rm_cell.id for p in pcells}
        ids = [ORACLE] + [c.id for c in cells] + [p.id for p in pcells]
        heads = {cid: "done earlier" for cid in finished}
        local = cfg.executor == "local"  # in this process: the pools and run as they are; else what pickles
        shared, where = (pools, run) if local else (pools.portable(), run.path)
        logs = run.path / "logs"

        def finish(cid: str, result: tuple[list[dict], str]) -> None:
            rows, head = result
            run.append_results(rows)
            finished[cid] = rows
            table.finish(cid, head)

        with StudyTable(ids, heads) as table:
            if ORACLE in todo:
                table.start(ORACLE)
                finish(ORACLE, (oracle_rows(cfg, pools), "gold-selected ceiling"))
            # RM cells first: a policy cell trains against its RM cell's saved RM and reads its rows
            run_cells([CellTask(c.id, rm_cell_task, (cfg, where, shared, c,
                                                     c.id in needs_rm and not (run.path / "cells" / c.id / "rm").is_dir()),
                                logs / f"{c.id}.log") for c in todo if isinstance(c, Cell)],
                      cfg, finish, table.start)
            run_cells([CellTask(c.id, policy_cell_task, (cfg, where, shared, c, finished[c.rm_cell.id]),
                                logs / f"{c.id}.log") for c in todo if isinstance(c, PolicyCell)],
                      cfg, finish, table.start)
    run.log_metrics(phase="summary", **{"time/total_s": time.perf_counter() - start, "cells": len(cells) + len(pcells)})
    build_report(run.path)
    console.print(f"done in {time.perf_counter() - start:.0f} s: {run.path / 'report.html'}")
    run.close()
    return run.path
