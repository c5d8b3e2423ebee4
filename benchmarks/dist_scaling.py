"""One process vs torchrun with K processes: RM training throughput and Best-of-n pool sampling time,
the same command and data, run back to back.

    python benchmarks/dist_scaling.py [--world smoke] [--nproc 2]

RM training: `goodhart rm train` (dropout 0, samples cached by a first run) → rm/pairs_per_s from the
run's summary. Sampling: `goodhart run --set cache=false` (16 training prompts: the proxy is not the
point) → time/sample_eval_s, the evaluation pool. Prints both and the
ratios. On a CPU machine K processes split the same cores (torchrun gives each OMP_NUM_THREADS=1),
so the ratio measures the overhead of the split; on K GPUs it measures the speed-up.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _summary(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("phase") == "summary"][-1]


def _goodhart(nproc: int, args: list[str]) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if nproc == 1:
        cmd, env = [sys.executable, "-m", "goodhart"], dict(os.environ, HF_HUB_OFFLINE="1")
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               "-m", "goodhart"]
    res = subprocess.run([*cmd, *args], capture_output=True, text=True, env=env)
    if res.returncode:
        sys.exit(f"failed: {' '.join(args)}\n{res.stderr[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default="smoke", choices=["smoke", "sentiment"])
    ap.add_argument("--nproc", type=int, default=2)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="goodhart-dist-bench-"))
    rm = ["rm", "train", "--world", args.world, "--set", "dropout=0"]
    _goodhart(1, [*rm, "--out", str(base / "warm")])  # fills the sample cache
    pairs = {}
    for k in (1, args.nproc):
        _goodhart(k, [*rm, "--out", str(base / f"rm{k}")])
        pairs[k] = _summary(base / f"rm{k}")["rm/pairs_per_s"]
    sample = {}
    for k in (1, args.nproc):
        _goodhart(k, ["run", "--world", args.world, "--set", "cache=false", "--set", "data.train_prompts=16",
                      "--out", str(base / f"run{k}")])
        sample[k] = _summary(base / f"run{k}")["time/sample_eval_s"]
    k = args.nproc
    print(f"world {args.world}, {os.cpu_count()} CPU cores, 1 vs {k} processes")
    print(f"RM training: {pairs[1]:.1f} vs {pairs[k]:.1f} pairs/s: {pairs[k] / pairs[1]:.2f}×")
    print(f"BoN pool sampling: {sample[1]:.1f} vs {sample[k]:.1f} s: {sample[1] / sample[k]:.2f}×")


if __name__ == "__main__":
    main()
