"""`goodhart policy train` as a command: train (policy.train), then build the run's report."""

from pathlib import Path

from goodhart.policy.train import train_policy
from goodhart.progress import console
from goodhart.runs import writer


def run_policy(cfg, out: str | Path, resume: bool = False, overwrite: bool = False) -> Path:
    """train_policy into `out`, then report.html and plots/ from its results (rank 0 writes)."""
    from goodhart.report import build_report

    path = train_policy(cfg, out, resume=resume, overwrite=overwrite)
    if writer():
        build_report(path)
    console.print(f"done: {path / 'report.html'}")
    return path
