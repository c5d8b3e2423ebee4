"""Sweeps on the executor (commands/executor.py): the same rows on a 2-worker local Ray as in one process, a
cell whose worker is killed is retried and lands once, a failing cell is named while the others finish."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from goodhart.commands.executor import Cell, run_cells
from goodhart.config import load_policy_pareto_config, load_rm_suite_config, load_study_config
from goodhart.errors import GoodhartError

GRID = ["grid.data_sizes=[48,192]", "data.eval_samples_per_prompt=32", "bon.bootstrap=20",
        "grid.aggregation=[single,ens]", "members=2"]
RAY = ["executor=ray", "ray.num_cpus=2", "ray.cpus_per_cell=1"]
TIMING = ("train_s", "replicate_s")  # the only fields allowed to differ between executors


def _rows(path) -> list[str]:
    rows = [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in open(path / "results.jsonl")]
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


@pytest.fixture
def one_thread():
    """A Ray cell runs on ray.cpus_per_cell = 1 torch thread; the in-process run must too for equal floats."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_local_executor_runs_cells_in_order_and_stops_at_the_first_error():
    class Sweep:
        executor = "local"

    seen = []
    cells = [Cell(str(i), divmod, (6, i), None) for i in (1, 2, 0, 3)]
    with pytest.raises(ZeroDivisionError):
        run_cells(cells, Sweep, lambda cid, result: seen.append((cid, result)))
    assert seen == [("1", (6, 0)), ("2", (3, 0))]


def test_pareto_config_names_what_replaced_workers():
    with pytest.raises(GoodhartError, match="workers is replaced by executor: ray"):
        load_policy_pareto_config(world="smoke", overrides=["workers=2"])


@pytest.mark.dist
def test_study_and_rm_suite_give_the_same_rows_on_ray_as_in_one_process(tmp_path, one_thread):
    from goodhart.commands.rm_suite import run_rm_suite
    from goodhart.commands.study import run_study

    local = run_study(load_study_config(world="smoke", overrides=GRID), tmp_path / "local")
    on_ray = run_study(load_study_config(world="smoke", overrides=GRID + RAY), tmp_path / "ray")
    assert _rows(local) == _rows(on_ray) and len(_rows(local)) > 100
    logs = sorted(p.name for p in (on_ray / "logs").iterdir())
    assert logs == sorted(f"{c}.log" for c in ("xs-n48-rho0-s0", "full-n48-rho0-s0", "xs-n192-rho0-s0",
                                                "full-n192-rho0-s0"))
    pids = {int(open(on_ray / "logs" / name).readline().split()[2]) for name in logs}
    assert os.getpid() not in pids  # the cells ran in Ray's workers
    suite = ["members=2", "warm_sizes=[2]", "independent=0", "ood_prompts=0", "seeds=[0,1]",
             "data.eval_samples_per_prompt=16"]
    a = run_rm_suite(load_rm_suite_config(world="smoke", overrides=suite), tmp_path / "suite-local")
    b = run_rm_suite(load_rm_suite_config(world="smoke", overrides=suite + RAY), tmp_path / "suite-ray")
    assert _rows(a) == _rows(b)


@pytest.mark.dist
def test_a_cell_whose_worker_is_killed_is_retried_and_lands_once(tmp_path):
    """kill -9 of the worker running a cell: Ray starts the cell again (ray.max_retries) and the study ends with
    every cell's rows exactly once."""
    out = tmp_path / "s"
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "goodhart.cli", "study", "--world", "smoke", "--out", str(out)]
    for over in GRID + RAY:
        args += ["--set", over]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim, deadline = None, time.monotonic() + 240
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        for log in sorted((out / "logs").glob("*.log")) if (out / "logs").is_dir() else []:
            first = log.read_text().split("\n", 1)[0]
            if first.startswith("worker pid "):
                victim = (log, int(first.split()[2]))
                os.kill(victim[1], signal.SIGKILL)
                break
        time.sleep(0.1)
    _, err = proc.communicate(timeout=600)
    assert victim is not None, err[-2000:]
    assert proc.returncode == 0, err[-2000:]
    starts = [line for line in victim[0].read_text().splitlines() if line.startswith("worker pid ")]
    assert len(starts) == 2 and str(victim[1]) not in starts[1]  # started again, in another process
    rows = [(r["cell"], r["aggregation"]) for r in map(json.loads, open(out / "results.jsonl"))
            if r["study"] == "study_cell"]
    assert len(rows) == len(set(rows)) == 1 + 4 * 2  # the oracle, 4 RM cells × (single, ens): each once


@pytest.mark.dist
def test_a_failing_run_is_named_while_the_others_finish_and_a_rerun_trains_what_is_left(tmp_path):
    from goodhart.commands.pareto import run_pareto
    from goodhart.config import load_rm_train_config
    from goodhart.reward.run import train_rm_run

    rm = train_rm_run(load_rm_train_config(world="smoke", overrides=["rm.epochs=1"]), tmp_path / "rm")
    cfg = load_policy_pareto_config(world="smoke", overrides=[
        f"reward_model={rm}", "steps=2", "eval_every=2", "rl_betas=[0, 0.5]", "reference_samples=16",
        "bon_bootstrap=20", *RAY])
    out = tmp_path / "grid"
    run_pareto(cfg.model_copy(update={"rl_betas": [0.0]}), out)  # a finished run to copy a config from
    (out / "jbond-beta0" / "checkpoint.pt").write_bytes(b"torn")
    for name in ("results.jsonl", "policy"):
        target = out / "jbond-beta0" / name
        if target.is_dir():
            import shutil

            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    with pytest.raises(GoodhartError, match=r"1 of 2 cells failed.*jbond-beta0: .*not a goodhart training state"):
        run_pareto(cfg, out)
    assert (out / "rloo-beta0.5" / "policy").is_dir()  # the other run finished
    (out / "jbond-beta0" / "checkpoint.pt").unlink()
    mtime = (out / "rloo-beta0.5" / "results.jsonl").stat().st_mtime_ns
    run_pareto(cfg, out)
    assert (out / "rloo-beta0.5" / "results.jsonl").stat().st_mtime_ns == mtime  # finished runs are skipped
    assert (out / "jbond-beta0" / "policy").is_dir()


@pytest.mark.dist
def test_ctrl_c_stops_the_sweeps_tasks_and_resume_finishes_it(tmp_path):
    """SIGINT while cells run on Ray: the command exits, no cell of it keeps running (its workers are gone), and
    --resume runs only the cells that had not landed, each once."""
    out = tmp_path / "s"
    args = [sys.executable, "-m", "goodhart.cli", "study", "--world", "smoke", "--out", str(out)]
    for over in GRID + RAY + ["grid.seeds=[0,1,2]"]:
        args += ["--set", over]
    # SIGINT back to its default in the child: a shell without job control starts background jobs (a test run
    # sent to the background) with SIGINT ignored, and a child inherits that, so it would never see the Ctrl-C
    proc = subprocess.Popen(args, env=os.environ | {"PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline, workers = time.monotonic() + 240, set()
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list((out / "logs").glob("*.log")) if (out / "logs").is_dir() else []
        workers = {int(p.read_text().split()[2]) for p in logs if p.read_text().startswith("worker pid ")}
        if workers:
            break
        time.sleep(0.1)
    assert workers, "no cell started"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    time.sleep(2)
    for pid in workers:  # the workers that ran this sweep's cells were stopped with it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    landed = {r["cell"] for r in map(json.loads, open(out / "results.jsonl")) if r["study"] == "study_cell"}
    assert len(landed) < 1 + 4 * 3
    res = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [(r["cell"], r["aggregation"]) for r in map(json.loads, open(out / "results.jsonl"))
            if r["study"] == "study_cell"]
    assert len(rows) == len(set(rows)) == 1 + 4 * 3 * 2
