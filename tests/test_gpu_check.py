"""benchmarks/gpu_check.sh --dry-run: every step the lent GPU machine runs (doctor, the lab default run, a pool,
RLOO steps, the sampling benchmark) runs on the CPU at lab-tiny size and records its status and time."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_runs_every_step_and_records_its_time(tmp_path):
    out = tmp_path / "gpu"
    env = os.environ | {"OUT": str(out), "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"], env=env,
                         capture_output=True, text=True, timeout=900)
    times = (out / "gpu_times.txt").read_text()
    steps = dict(re.findall(r"^(\w+)\s+rc=(\d+)\s+[\d.]+ s$", times, re.M))
    assert list(steps) == ["doctor", "default_run", "pool", "rloo", "sampling_benchmark"], times
    assert all(rc == "0" for name, rc in steps.items() if name != "doctor"), times
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "world lab-tiny, device cpu" in times
    for run in ("run", "pool", "rloo"):
        assert (out / run / "results.jsonl").stat().st_size > 0
