"""Optional metric sinks beside metrics.jsonl (always written): TensorBoard and Weights & Biases.

Selected by a config's `log_to` list; installed with `pip install goodhart[tensorboard]` /
`goodhart[wandb]`. W&B runs offline unless WANDB_MODE says otherwise (no network at run time).
"""

import atexit
import os
from pathlib import Path

from goodhart.errors import GoodhartError


def _numbers(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _tag(phase: str | None, key: str) -> str:
    """Grouped names as in STYLE.md; phases other than a run's main loop prefix their metrics."""
    return key if phase in (None, "rm", "policy") else f"{phase}/{key}"


class TensorBoardSink:
    def __init__(self, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GoodhartError("log_to tensorboard needs the extra: pip install 'goodhart[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), flush_secs=10)
        self.steps: dict[str | None, int] = {}
        atexit.register(self.writer.close)

    def log(self, metrics: dict) -> None:
        phase = metrics.get("phase")
        step = int(metrics["step"]) if isinstance(metrics.get("step"), int) else self.steps.get(phase, 0)
        self.steps[phase] = step + 1
        for k, v in _numbers(metrics).items():
            if k != "step":
                self.writer.add_scalar(_tag(phase, k), v, step)


class WandbSink:
    def __init__(self, run_dir: Path, config: dict):
        try:
            import wandb
        except ImportError:
            raise GoodhartError("log_to wandb needs the extra: pip install 'goodhart[wandb]'") from None
        self.run = wandb.init(project=config.get("wandb_project", "goodhart"), name=run_dir.name, dir=str(run_dir),
                              config=config, mode=os.environ.get("WANDB_MODE", "offline"), reinit="finish_previous")
        atexit.register(self.run.finish)

    def log(self, metrics: dict) -> None:
        phase = metrics.get("phase")
        self.run.log({_tag(phase, k): v for k, v in _numbers(metrics).items() if k != "step"})


def make_sinks(run_dir: Path, config: dict) -> list:
    names = config.get("log_to") or []
    return [TensorBoardSink(run_dir) if n == "tensorboard" else WandbSink(run_dir, config) for n in names]
