"""kill -9 in the middle of RM training, a study and policy training, then `--resume`: the final
tables equal an uninterrupted run's (smoke world, real subprocesses)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from goodhart.runs import read_jsonl

from helpers import goodhart


def _kill_when(args: list[str], ready, timeout: float = 240) -> None:
    """Start `goodhart args`, SIGKILL it as soon as ready() holds; fail if it finishes first."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "goodhart.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline, "timed out waiting for the kill point"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _same(a: list[dict], b: list[dict], skip=("train_s", "reward_model")) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x.keys() - set(skip):
            assert x[k] == (pytest.approx(y[k], rel=1e-5, abs=1e-7) if isinstance(y[k], float) else y[k]), k


def _ok(res):
    assert res.returncode == 0, res.stderr[-2000:]


RM = ["rm", "train", "--world", "smoke", "--set", "rm.epochs=12", "--set", "checkpoint_every=40"]


def test_kill_rm_training_then_resume(tmp_path):
    _ok(goodhart(*RM, "--out", str(tmp_path / "straight")))
    killed = tmp_path / "killed"
    _kill_when([*RM, "--out", str(killed)], lambda: (killed / "rm_state.pt").is_file())
    assert not (killed / "results.jsonl").exists()
    _ok(goodhart(*RM, "--out", str(killed), "--resume"))
    _same(read_jsonl(tmp_path / "straight" / "results.jsonl"), read_jsonl(killed / "results.jsonl"))
    steps = [r["step"] for r in read_jsonl(killed / "metrics.jsonl") if r.get("phase") == "rm"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > 40  # every step logged exactly once
    assert not (killed / "rm_state.pt").exists()


STUDY = ["study", "--world", "smoke", "--set", "grid.data_sizes=[48,96,192,384]", "--set",
         "data.eval_samples_per_prompt=32", "--set", "bon.bootstrap=10"]


def test_kill_study_then_resume(tmp_path):
    _ok(goodhart(*STUDY, "--out", str(tmp_path / "straight")))
    killed = tmp_path / "killed"

    def two_cells():
        path = killed / "results.jsonl"
        return path.is_file() and path.read_text().count('"study": "study_cell"') >= 3

    _kill_when([*STUDY, "--out", str(killed)], two_cells)
    _ok(goodhart(*STUDY, "--out", str(killed), "--resume"))
    key = lambda r: (r["study"], r["cell"], r.get("aggregation"), r.get("n") or 0, r.get("at") or "")  # noqa: E731
    _same(sorted(read_jsonl(tmp_path / "straight" / "results.jsonl"), key=key),
          sorted(read_jsonl(killed / "results.jsonl"), key=key))


def test_kill_policy_training_then_resume(tmp_path):
    _ok(goodhart("rm", "train", "--world", "smoke", "--out", str(tmp_path / "rm")))
    args = ["policy", "train", "--world", "smoke", "--set", f"reward_model={tmp_path / 'rm'}", "--set", "method=rloo",
            "--set", "steps=16", "--set", "checkpoint_every=4"]
    _ok(goodhart(*args, "--out", str(tmp_path / "straight")))
    killed = tmp_path / "killed"
    _kill_when([*args, "--out", str(killed)], lambda: (killed / "checkpoint.pt").is_file())
    _ok(goodhart(*args, "--out", str(killed), "--resume"))
    _same(read_jsonl(tmp_path / "straight" / "results.jsonl"), read_jsonl(killed / "results.jsonl"))
