"""Policy grid wall time with `workers` = 1 (one process, every torch thread) vs 2 (two runs at a time, each
its own process with half the threads): the same grid cells, the same code, one after the other.

    python benchmarks/pareto_workers.py --reward-model runs/base/proxy_rm            # 4 short runs of the CPU grid
    python benchmarks/pareto_workers.py --reward-model R --set steps=14 --set eval_every=2

The grid is configs/policy-pareto-cpu.yaml cut to one seed and four cells (RLOO β 0 and 0.2, J-BOND, BOND
forward), 6 steps and 4 evaluations each unless --set says otherwise. The reference pool is sampled (or read
from the cache) before either timing, so both time the runs alone. Prints each wall time, the peak RSS of
the largest process, and last `workers 2: <R>× the runs per hour of workers 1`.
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
CUT = ["seeds=[0]", "rl_betas=[0,0.2]", "jbond_gammas=[0]", "bond_divergences=[forward]", "steps=6", "eval_every=2"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reward-model", required=True, help="the proxy (e.g. runs/base/proxy_rm of `goodhart run`)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "policy-pareto-cpu.yaml"))
    ap.add_argument("--set", dest="sets", action="append", default=[], help="more KEY=VALUE overrides")
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
        wall = {}
        for workers in (1, 2):
            cmd = [sys.executable, "-m", "goodhart", "policy", "pareto", "--config", str(config), "--out",
                   str(Path(tmp) / f"w{workers}"), *[a for s in [*sets, f"workers={workers}"] for a in ("--set", s)]]
            start = time.monotonic()
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            wall[workers] = time.monotonic() - start
            if done.returncode:
                sys.exit(f"workers={workers} failed:\n{done.stderr[-2000:]}")
            rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
            print(f"workers {workers}: {wall[workers] / 60:.1f} min, peak RSS of the largest process so far "
                  f"{rss:.1f} GB", flush=True)
    print(f"workers 2: {wall[1] / wall[2]:.2f}× the runs per hour of workers 1")


if __name__ == "__main__":
    main()
