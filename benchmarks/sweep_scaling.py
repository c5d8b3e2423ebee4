"""A sweep's wall time on the executor: the smoke study's cells in one process (executor: local, 1 torch thread)
against a local Ray with 1 worker and with 2 workers (executor: ray, 1 CPU and 1 thread a cell), and Ray's
overhead per cell against the cost of one lab-world RM cell.

    python benchmarks/sweep_scaling.py                      # smoke study, 2 seeds × 2 sizes × 2 data sizes
    python benchmarks/sweep_scaling.py --seeds 4 --lab-pairs 8192

Each variant runs `goodhart study` in a fresh process (its Ray started and stopped inside it), one after the
other on an otherwise idle machine. Prints each wall time, then
`ray 2 workers: <R>× the cells per hour of local`, `overhead per cell: <S> s` ((ray 1 worker − local) / cells)
and `overhead / lab cell: <P>%` (target ≤ 5%), the lab cell timed once in its own study (executor: local).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SMOKE = ["data.eval_samples_per_prompt=32", "bon.bootstrap=20", "grid.data_sizes=[48,192]"]  # 2 RM sizes (preset)


def study(world: str, sets: list[str], out: Path, threads: int) -> tuple[float, list[float]]:
    """Wall seconds of `goodhart study` and the per-cell seconds it printed."""
    args = [sys.executable, "-m", "goodhart.cli", "study", "--world", world, "--out", str(out), "--overwrite"]
    for s in sets:
        args += ["--set", s]
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    res = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode:
        sys.exit(f"goodhart study failed:\n{res.stderr[-3000:]}")
    cells = [float(s) for s in re.findall(r"cell (?!oracle)\S+ done: .*\((\d+) s\)", res.stdout + res.stderr)]
    return wall, cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2, help="grid seeds of the smoke study (cells: seeds × 4)")
    ap.add_argument("--lab-pairs", type=int, default=8192, help="comparisons of the lab-world cell")
    args = ap.parse_args()
    sets = SMOKE + [f"grid.seeds=[{','.join(map(str, range(args.seeds)))}]"]
    n_cells = 4 * args.seeds
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        study("smoke", sets, tmp / "warm", 2)  # the world and pools into the cache: no variant below samples
        walls = {}
        for label, extra, threads in [("local", [], 1),
                                      ("ray 1 worker", ["executor=ray", "ray.num_cpus=1"], 1),
                                      ("ray 2 workers", ["executor=ray", "ray.num_cpus=2"], 1)]:
            walls[label], _ = study("smoke", sets + extra, tmp / label.replace(" ", "-"), threads)
            print(f"{label}: {walls[label]:.1f} s for {n_cells} cells", flush=True)
        _, lab = study("lab", ["data.train_prompts=512", f"grid.data_sizes=[{args.lab_pairs}]"], tmp / "lab", 1)
    per_cell = (walls["ray 1 worker"] - walls["local"]) / n_cells
    print(f"lab cell ({args.lab_pairs} comparisons, 1 thread, local): {lab[0]:.0f} s")
    print(f"ray 2 workers: {walls['local'] / walls['ray 2 workers']:.2f}× the cells per hour of local")
    print(f"overhead per cell: {per_cell:.1f} s")
    print(f"overhead / lab cell: {100 * per_cell / lab[0]:.1f}%")


if __name__ == "__main__":
    main()
