"""Metric sinks: TensorBoard event files and offline W&B runs beside metrics.jsonl."""

import os

from helpers import goodhart


def test_tensorboard_and_offline_wandb(tmp_path):
    out = tmp_path / "rm"
    env_before = os.environ.get("WANDB_MODE")
    res = goodhart("rm", "train", "--world", "smoke", "--set", "rm.epochs=1", "--set", "prompts=16",
                   "--set", "log_to=[tensorboard, wandb]", "--out", str(out))
    assert res.returncode == 0, res.stderr
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert "loss/bt" in acc.Tags()["scalars"] and len(acc.Scalars("loss/bt")) > 3
    runs = list((out / "wandb").glob("offline-run-*"))
    assert runs and any(runs[0].glob("*.wandb"))  # written without network
    assert os.environ.get("WANDB_MODE") == env_before


def test_missing_extra_is_one_clear_line(tmp_path):
    code = ("import sys, builtins; real = builtins.__import__\n"
            "def fake(name, *a, **k):\n"
            "    if name.startswith('torch.utils.tensorboard'): raise ImportError(name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = fake\n"
            "from goodhart.sinks import TensorBoardSink\n"
            "from goodhart.errors import GoodhartError\n"
            "import pathlib\n"
            "try: TensorBoardSink(pathlib.Path('.'))\n"
            "except GoodhartError as e: print('ERR', e)\n")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60).stdout
    assert "pip install 'goodhart[tensorboard]'" in out
