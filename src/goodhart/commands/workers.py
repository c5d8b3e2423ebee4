"""Grid runs trained side by side in worker processes (`policy pareto`'s `workers`).

Why: on a small CPU one process with every core leaves them idle part of the time (a small model's decode
and its small log-probability batches do not keep several threads busy; the measured gain is in
benchmarks/README.md, `pareto_workers.py`). So each worker is its own process (spawned: no inherited torch
or CUDA state) with the parent's torch threads divided among the workers, training one run after another. A
run's output goes to <out>/logs/<run>.log; the parent prints one line when a run ends or fails. A run that fails does
not stop the others; its error is reported at the end, and rerunning resumes it from its checkpoint."""

import os
import time
from pathlib import Path

import torch

from goodhart.errors import GoodhartError
from goodhart.progress import console


def _train_one(cfg_json: dict, run: str, log: str, threads: int, resume: bool, overwrite: bool) -> float:
    """In the worker: the run's output to its log file, `threads` torch threads, one `policy train` run;
    returns its minutes. Errors come back to the parent as one line (GoodhartError) or their type and text."""
    from goodhart.commands.policy_train import run_policy
    from goodhart.config import PolicyTrainConfig

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    torch.set_num_threads(threads)
    print(f"worker pid {os.getpid()}, {threads} torch threads", flush=True)
    start = time.monotonic()
    try:
        run_policy(PolicyTrainConfig.model_validate(cfg_json), run, resume=resume, overwrite=overwrite)
    except GoodhartError:
        raise
    except Exception as e:  # a traceback in the log, one line to the parent
        import traceback

        traceback.print_exc()
        raise GoodhartError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (see {log})") from None
    return (time.monotonic() - start) / 60


def train_in_workers(jobs: list[tuple[str, object, Path, bool, bool]], workers: int, logs: Path) -> None:
    """Train each (name, PolicyTrainConfig, run dir, resume, overwrite) job in one of `workers` spawned
    processes, each with max(1, torch threads // workers) threads. Raises one GoodhartError naming the runs
    that failed once every other run has finished."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    logs.mkdir(parents=True, exist_ok=True)
    threads = max(1, torch.get_num_threads() // workers)
    console.print(f"{len(jobs)} runs in {workers} worker processes, {threads} torch thread(s) each; logs in {logs}")
    failed = []
    # a worker trains run after run, as one process does with workers=1: a fresh process pays ~60 s of
    # warm-up in its first steps (2 RLOO steps at 1 thread: 73.8 + 41.6 s in a new process, 20.9 + 29.8 s for
    # the next run in the same one; 2026-12-04), once per worker instead of once per run
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
    try:
        futures = {pool.submit(_train_one, sub.model_dump(mode="json"), str(run), str(logs / f"{name}.log"),
                               threads, resume, overwrite): name for name, sub, run, resume, overwrite in jobs}
        for future in as_completed(futures):
            name = futures[future]
            try:
                console.print(f"{name}: done in {future.result():.1f} min")
            except GoodhartError as e:
                failed.append(f"{name}: {e}")
                console.print(f"[red]{name}: failed[/] ({e})")
            except Exception as e:  # the worker itself died (killed, out of memory)
                failed.append(f"{name}: worker died ({type(e).__name__})")
                console.print(f"[red]{name}: worker died[/] ({type(e).__name__}: {e})")
    except BaseException:  # Ctrl-C or a kill of the parent: stop the workers too (runs resume from checkpoints)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if failed:
        raise GoodhartError(f"{len(failed)} of {len(jobs)} runs failed, the others are kept (rerun to retry): "
                            + "; ".join(failed))
