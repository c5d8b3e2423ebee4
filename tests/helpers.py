"""Shared test helpers: run the CLI in a subprocess, check one-line errors."""

import os
import subprocess
import sys


def goodhart(*args, cwd=None, env=None):
    env = dict(env or os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "goodhart.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def assert_one_line_error(res, message):
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.stderr
    assert "Traceback" not in res.stderr
