"""Policy grid wall time with `workers` = 1 (one process, every torch thread) vs 2 (two runs at a time, each
its own process with half the threads): the same grid cells, the same code, one after the other.

    python benchmarks/pareto_workers.py --reward-model runs/base/proxy_rm            # 4 short runs of the CPU grid
    python benchmarks/pareto_workers.py --reward-model R --set steps=14 --set eval_every=2
    python benchmarks/pareto_workers.py --reward-model R --malloc   # workers 2, glibc's malloc as is vs tuned

The grid is configs/policy-pareto-cpu.yaml cut to one seed and four cells (RLOO β 0 and 0.2, J-BOND, BOND
forward), 6 steps and 4 evaluations each unless --set says otherwise. The reference pool is sampled (or read
from the cache) before either timing, so both time the runs alone. Prints each wall time, the peak RSS of
the largest process, and last `workers 2: <R>× the runs per hour of workers 1`.

With --malloc both timings use workers 2: glibc's malloc as it is (allocations above its mmap threshold
mmapped and given back when freed, so a step's activations are faulted in again at every step) and with
MALLOC (below: no mmap, no trimming, so freed memory stays in the process). It prints each one's user and
system CPU time and minor page faults; last line `keep: <R>× the runs per hour of default`. Measured
2026-12-04 (benchmarks/README.md): 1.01×, page faults 22.1 M → 7.0 M, peak RSS 6.9 → 8.2 GB, so goodhart
does not set it.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(10**12), "MALLOC_TOP_PAD_": str(256 << 20)}
CUT = ["seeds=[0]", "rl_betas=[0,0.2]", "jbond_gammas=[0]", "bond_divergences=[forward]", "steps=6", "eval_every=2"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reward-model", required=True, help="the proxy (e.g. runs/base/proxy_rm of `goodhart run`)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "policy-pareto-cpu.yaml"))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="more KEY=VALUE overrides")
    ap.add_argument("--malloc", action="store_true", help="workers 2 with glibc's malloc as is vs MALLOC")
    args = ap.parse_args()
    from goodhart.commands.pareto import reference
    from goodhart.config import load_policy_pareto_config

    sets = [f"reward_model={args.reward_model}", *CUT, *args.sets]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "grid.yaml"  # the CPU grid without its reward-model axis (other proxies)
        config.write_text("".join(line for line in open(args.config)
                                  if not line.startswith(("reward_models:", "rm_axis_cells:"))))
        cfg = load_policy_pareto_config(str(config), None, sets)
        reference(cfg)  # the reference pool into the sample cache: neither timing below samples it
        print(f"{len(cfg.runs())} runs: {', '.join(name for name, _ in cfg.runs())}; torch threads "
              f"{torch.get_num_threads()}", flush=True)
        variants = ([("default", 2, {}), ("keep", 2, MALLOC)] if args.malloc else
                    [("workers 1", 1, {}), ("workers 2", 2, {})])
        wall = {}
        for label, workers, malloc in variants:
            cmd = [sys.executable, "-m", "goodhart", "policy", "pareto", "--config", str(config), "--out",
                   str(Path(tmp) / label.replace(" ", "")),
                   *[a for s in [*sets, f"workers={workers}"] for a in ("--set", s)]]
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=os.environ | malloc)
            wall[label] = time.monotonic() - start
            if done.returncode:
                sys.exit(f"{label} failed:\n{done.stderr[-2000:]}")
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            print(f"{label}: {wall[label] / 60:.1f} min, user {after.ru_utime - before.ru_utime:.0f} s, system "
                  f"{after.ru_stime - before.ru_stime:.0f} s, minor page faults "
                  f"{(after.ru_minflt - before.ru_minflt) / 1e6:.2f} M, peak RSS of the largest process so far "
                  f"{after.ru_maxrss / 2**20:.1f} GB", flush=True)
    (a, _, _), (b, _, _) = variants
    print(f"{b}: {wall[a] / wall[b]:.2f}× the runs per hour of {a}")


if __name__ == "__main__":
    main()
