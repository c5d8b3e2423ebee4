"""Hardening: doctor, the generated CLI reference, security rules, Ctrl-C, more bad input."""

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import assert_one_line_error, goodhart

SRC = Path(__file__).parents[1] / "src" / "goodhart"


def test_doctor_reports_and_fixes_a_stale_cache(tmp_path):
    cache = tmp_path / "cache"
    (cache / "pools").mkdir(parents=True)
    (cache / "pools" / "smoke-x.json").write_text('{"completions": [[')  # torn by a kill
    (cache / ".smollm2-abc").mkdir()  # an interrupted conversion
    (cache / "smollm2-135m-instruct-fp32").mkdir()
    (cache / "smollm2-135m-instruct-fp32" / "model.safetensors").write_bytes(b"")
    env = dict(os.environ, GOODHART_CACHE=str(cache))
    run = lambda *a: subprocess.run([sys.executable, "-m", "goodhart.cli", "doctor", *a],  # noqa: E731
                                    capture_output=True, text=True, env=env, timeout=120)
    res = run()
    assert res.returncode == 1 and "2 stale entries" in res.stdout and "torch" in res.stdout
    res = run("--fix")
    assert res.returncode == 0, res.stdout
    assert not (cache / ".smollm2-abc").exists() and not (cache / "pools" / "smoke-x.json").exists()


def test_cli_reference_is_current():
    from goodhart.cli_reference import reference

    doc = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    assert doc == reference(), "docs/cli.md is stale: python -m goodhart.cli_reference > docs/cli.md"
    for command in ("run", "study", "doctor", "rm train", "policy train", "policy pareto"):
        section = doc.split(f"## goodhart {command}\n", 1)[1].split("\n## ", 1)[0]
        assert "Example: goodhart" in section, command


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func).endswith(name)]


def test_no_unpickling_and_no_remote_code_by_default():
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
        assert "pickle" not in imports and not any(getattr(n, "module", None) == "pickle" for n in ast.walk(tree))
        for call in _calls(tree, "torch.load"):
            kw = {k.arg: ast.unparse(k.value) for k in call.keywords}
            assert kw.get("weights_only") == "True", f"{path}: torch.load without weights_only=True"
        for call in ast.walk(tree):
            if isinstance(call, ast.keyword) and call.arg == "trust_remote_code":
                assert ast.unparse(call.value) != "True", f"{path}: trust_remote_code hard-wired on"
    from goodhart.config import HFWorldConfig

    assert HFWorldConfig().trust_remote_code is False


def test_cli_is_offline_unless_opted_in():
    code = "import os, goodhart.cli as c, sys; sys.argv=['goodhart','--help']\ntry: c.main()\nexcept SystemExit: pass\n" \
           "print('OFFLINE=' + os.environ['HF_HUB_OFFLINE'])"
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60).stdout
    assert "OFFLINE=1" in out
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=env | {"HF_HUB_OFFLINE": "0"}).stdout
    assert "OFFLINE=0" in out


def test_ctrl_c_says_how_to_resume(tmp_path):
    out = tmp_path / "s"
    # a shell that runs the tests in the background ignores SIGINT for its children; undo that, as a
    # terminal would deliver Ctrl-C
    proc = subprocess.Popen([sys.executable, "-m", "goodhart.cli", "study", "--world", "smoke", "--out", str(out),
                             "--set", "grid.data_sizes=[48,96,192,384]", "--set", "rm.epochs=40"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not (out / "results.jsonl").is_file():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "--resume" in err.splitlines()[-1] and "Traceback" not in err


def test_more_bad_input(tmp_path):
    assert_one_line_error(goodhart("study", "--world", "smoke", "--set", "grid.data_sizes=[]"), "grid.data_sizes")
    assert_one_line_error(goodhart("study", "--world", "smoke", "--set", "grid.rm_sizes={}"), "grid.rm_sizes")
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    assert_one_line_error(goodhart("policy", "train", "--world", "smoke", "--set", f"reward_model={not_a_model}",
                                   "--out", str(tmp_path / "p")), "not a reward-model checkpoint")
    assert not (tmp_path / "p").exists()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a"}\n{"prompt": "b"\n')
    res = goodhart("run", "--world", "hf", "--set", f"hf.prompts={prompts}", "--set", "hf.policy=x", "--set",
                   "hf.gold=y", "--set", "hf.proxy_backbone=z", "--out", str(tmp_path / "r"))
    assert_one_line_error(res, "prompts.jsonl:2: not valid JSON")
    assert_one_line_error(goodhart("rm", "train", "--world", "smoke", "--resume"), "--resume needs the --out")
