"""One executor for every sweep's independent cells (a study's RM and policy cells, an RM suite's replicates,
a policy grid's runs): `executor: local` runs them one after another in this process; `executor: ray` makes
each cell a Ray task that asks for `ray.cpus_per_cell` CPUs and `ray.gpus_per_cell` GPUs, so Ray places it on
this machine (a Ray started for the sweep) or on any node of a cluster (`ray.address`).

Why Ray and not a process pool written here: it places cells by the resources they declare across nodes,
restarts a cell whose worker died, and is what OpenRLHF and verl schedule with. Cells return their rows; only
this process writes the sweep's results.jsonl, so two cells never append to one file. A cell's stdout and
stderr go to <out>/logs/<cell>.log (the run directory must be on a filesystem every node sees)."""

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from goodhart.errors import GoodhartError
from goodhart.progress import console
from goodhart.runs import METRICS, RunDir, append_jsonl

# the variables a cell needs to find its models and caches the way this process does
FORWARDED_ENV = ("GOODHART_CACHE", "HF_HUB_OFFLINE", "HF_HOME", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class Cell:
    """One unit of a sweep: fn(*args) run where the executor puts it (fn a module-level function, args
    picklable), its output to `log` when it runs in a worker."""

    id: str
    fn: Callable
    args: tuple
    log: Path


class CellRun(RunDir):
    """A sweep cell's view of the run directory from an executor worker: checkpoints and sub-runs under the run
    as usual, its metrics in cells/<id>/metrics.jsonl. Only the sweep's own process writes the run's
    metrics.jsonl and results.jsonl (cells return their rows)."""

    def __init__(self, path: str | Path, cell_id: str):
        super().__init__(path)
        self.cell_id = cell_id

    def log_metrics(self, **metrics) -> None:
        folder = self.path / "cells" / self.cell_id
        folder.mkdir(parents=True, exist_ok=True)
        append_jsonl(folder / METRICS, [metrics])

    def append_results(self, rows: list[dict]) -> None:
        raise RuntimeError("a sweep cell returns its rows; the sweep's process writes results.jsonl")


def run_cells(cells: list[Cell], sweep, done: Callable[[str, object], None],
              start: Callable[[str], None] | None = None) -> None:
    """Run every cell; done(id, result) is called here, in this process, as each finishes (in the order they
    finish). `sweep`: the config's Sweep fields (executor, ray). Under ray, a cell that raises is named in one
    GoodhartError once every other cell has finished; locally the first error stops the sweep (as one process
    always has). Finished cells have been handed to `done` either way, so a rerun with --resume skips them."""
    if not cells:
        return
    if sweep.executor == "local":
        for cell in cells:
            if start:
                start(cell.id)
            done(cell.id, cell.fn(*cell.args))
        return
    _run_on_ray(cells, sweep.ray, done, start)


def cell_threads(ray_cfg) -> int:
    return max(1, int(ray_cfg.cpus_per_cell))


def _in_worker(fn: Callable, args: tuple, threads: int, log: str):
    """In a Ray worker: the cell's output appended to its log, `threads` torch threads, then fn(*args).
    A GoodhartError comes back as itself; any other error as one line naming the log (its traceback is there)."""
    import torch

    Path(log).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    torch.set_num_threads(threads)
    print(f"worker pid {os.getpid()} on {os.uname().nodename}, {threads} torch thread(s)", flush=True)
    try:
        return fn(*args)
    except GoodhartError:
        raise
    except Exception as e:
        import traceback

        traceback.print_exc()
        raise GoodhartError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (see {log})") from None


@contextlib.contextmanager
def ray_session(ray_cfg):
    """Ray connected for the sweep: a cluster at ray_cfg.address, else one started here and stopped after."""
    import ray

    if ray.is_initialized():  # a caller (a notebook, a test) already holds a session: use it as it is
        yield ray
        return
    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    kwargs = {"address": ray_cfg.address, "include_dashboard": False, "log_to_driver": False,
              "logging_level": "ERROR", "runtime_env": {"env_vars": env} if env else None}
    if ray_cfg.address is None:
        kwargs["num_cpus"] = ray_cfg.num_cpus or os.cpu_count()
    try:
        ray.init(**kwargs)
    except Exception as e:  # an unreachable address, a cluster of another Ray version
        raise GoodhartError(f"cannot start or join Ray (ray.address={ray_cfg.address}): "
                            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _run_on_ray(cells: list[Cell], ray_cfg, done, start) -> None:
    with ray_session(ray_cfg) as ray:
        total = ray.cluster_resources()
        if ray_cfg.cpus_per_cell > total.get("CPU", 0) or ray_cfg.gpus_per_cell > total.get("GPU", 0):
            raise GoodhartError(f"a cell asks for {ray_cfg.cpus_per_cell:g} CPU and {ray_cfg.gpus_per_cell:g} GPU but "
                                f"the Ray cluster has {total.get('CPU', 0):g} CPU and {total.get('GPU', 0):g} GPU in all: "
                                "lower ray.cpus_per_cell / ray.gpus_per_cell")
        task = ray.remote(_in_worker).options(
            num_cpus=ray_cfg.cpus_per_cell, num_gpus=ray_cfg.gpus_per_cell, max_retries=ray_cfg.max_retries,
            retry_exceptions=False)
        at_once = int(min(total.get("CPU", 1) // ray_cfg.cpus_per_cell,
                          total["GPU"] // ray_cfg.gpus_per_cell if ray_cfg.gpus_per_cell else float("inf")))
        console.print(f"{len(cells)} cells on Ray ({total.get('CPU', 0):g} CPU, {total.get('GPU', 0):g} GPU: "
                      f"{at_once} at a time); logs in {cells[0].log.parent}")
        threads = cell_threads(ray_cfg)
        pending, begun = {}, {}
        for cell in cells:
            pending[task.remote(cell.fn, cell.args, threads, str(cell.log))] = cell
            begun[cell.id] = time.monotonic()
            if start:
                start(cell.id)
        failed = []
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayTaskError as e:
                    cause = e.cause if isinstance(e.cause, Exception) else e
                    failed.append(f"{cell.id}: {cause}")
                    console.print(f"[red]{cell.id}: failed[/] ({cause})")
                    continue
                except ray.exceptions.RayError as e:  # its worker died more times than ray.max_retries allows
                    failed.append(f"{cell.id}: worker died ({type(e).__name__})")
                    console.print(f"[red]{cell.id}: worker died[/] ({type(e).__name__}); see {cell.log}")
                    continue
                done(cell.id, result)
        except BaseException:  # Ctrl-C or a kill of this process: stop this sweep's tasks (rerun with --resume)
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        if failed:
            raise GoodhartError(f"{len(failed)} of {len(cells)} cells failed, the others are kept (rerun with "
                                "--resume to retry them): " + "; ".join(failed))


@contextlib.contextmanager
def node_lock(name: str):
    """An exclusive lock file in this node's goodhart cache: the first cell on a node builds a world or a pool
    cache while the others wait, then they read it."""
    import fcntl

    from goodhart.runs import cache_dir

    path = cache_dir() / f".{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_WORLDS: dict[str, object] = {}


def worker_world(cfg):
    """cfg's world in this process, loaded once however many cells an executor worker runs; the first cell on a
    node that finds its cache missing builds it under a node lock while the others wait."""
    from goodhart.worlds import load_world

    key = cfg.model_dump_json(include={"world", "hf"})
    if key not in _WORLDS:
        with node_lock(f"world-{cfg.world}"):
            _WORLDS[key] = load_world(cfg)
    return _WORLDS[key]
