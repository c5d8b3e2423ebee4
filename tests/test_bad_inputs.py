"""Bad input never produces a traceback or half-written output (issue 19): each case runs the real CLI
in a subprocess and must end in one `error:` line of bounded length, exit 2, and nothing written — the
--out directory absent (or, where it held a run, unchanged). Classes: usage errors, config errors,
loaders, partial state, silent acceptance, settings a command would ignore."""

import json
import os
from pathlib import Path

import pytest

from helpers import assert_one_line_error, goodhart

SMOKE = ("--world", "smoke")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs the cases point at: bad configs, preference files, checkpoints, a plain file."""
    root = tmp_path_factory.mktemp("inputs")
    (root / "latin1.yaml").write_bytes("seed: 1  # caf\xe9\n".encode("latin-1"))
    (root / "plain.txt").write_text("not a directory\n")
    rows = [{"prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)]
    rows[1]["rejected"] = rows[1]["chosen"]
    (root / "same.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    long = [{"prompt": "p", "chosen": "x" * 200_000, "rejected": "y"}] + rows[2:]
    (root / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in long))
    (root / "long_prompts.jsonl").write_text(json.dumps({"prompt": "word " * 5_000}) + "\n")
    from goodhart.worlds.smoke import make_proxy, save_smoke_models

    save_smoke_models(root / "hf")
    model, tok = make_proxy(0)
    model.save_pretrained(root / "rm")
    tok.save_pretrained(root / "rm")
    truncated = root / "truncated"
    model.save_pretrained(truncated)
    tok.save_pretrained(truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    nan_run = root / "nan_run"
    nan_run.mkdir()
    (nan_run / "results.jsonl").write_text(json.dumps({"method": "bon", "reward_model": "proxy", "n": 1, "d": 0.0,
                                                       "gold": None, "proxy": 0.1}) + "\n")
    return root


def _case(tmp_path, files, args, env=None):
    out = tmp_path / "out"
    argv = [a.format(files=files, out=out) for a in args]
    extra = dict(os.environ, **(env or {})) if env else None
    return goodhart(*argv, env=extra), out


CASES = {
    # usage: typer raises its own copies of click's exceptions
    "unknown option": (["run", "--bogus"], "No such option: --bogus"),
    "unknown command": (["rnu"], "No such command 'rnu'"),
    "missing argument": (["rm", "warm"], "Missing argument"),
    "option without value": (["run", "--set"], "requires an argument"),
    "unknown method": (["policy", "train", *SMOKE, "--method", "ppo", "--set", "reward_model={files}/rm", "--out",
                        "{out}"], "method"),
    # config
    "undecodable config": (["run", "-c", "{files}/latin1.yaml", "--out", "{out}"], "not UTF-8"),
    "seed beyond 2^32 - 1": (["run", *SMOKE, "--set", "seed=4294967296", "--out", "{out}"], "seed"),
    "rl leg with an own proxy": (["run", *SMOKE, "--set", "proxy=[{files}/rm]", "--set", "rl.steps=5", "--out",
                                 "{out}"], "rl.steps"),
    "rl leg of one rollout": (["run", *SMOKE, "--set", "rl.samples_per_prompt=1", "--out", "{out}"],
                              "rl.samples_per_prompt"),
    "grid seed beyond 2^32 - 1": (["study", *SMOKE, "--set", "grid.seeds=[4294967296]", "--out", "{out}"], "seeds"),
    "negative suite seed": (["rm", "suite", *SMOKE, "--set", "seeds=[-3]", "--out", "{out}"], "seeds"),
    "empty suite seeds": (["rm", "suite", *SMOKE, "--set", "seeds=[]", "--out", "{out}"], "seeds"),
    "empty pareto seeds": (["policy", "pareto", *SMOKE, "--set", "reward_model={files}/rm", "--set", "seeds=[]",
                            "--out", "{out}"], "seeds"),
    "pareto seed beyond 2^32 - 1": (["policy", "pareto", *SMOKE, "--set", "reward_model={files}/rm", "--set",
                                     "seeds=[4294967296]", "--out", "{out}"], "seeds"),
    "empty study policy seeds": (["study", *SMOKE, "--set", "policy.methods=[rloo]", "--set", "policy.seeds=[]",
                                  "--out", "{out}"], "seeds"),
    "empty grid data sizes": (["study", *SMOKE, "--set", "grid.data_sizes=[]", "--out", "{out}"], "data_sizes"),
    "max_new_tokens beyond positions": (["run", *SMOKE, "--set", "sampling.max_new_tokens=64", "--out", "{out}"],
                                        "positions"),
    "key for another method": (["policy", "train", *SMOKE, "--set", "reward_model={files}/rm", "--set", "method=rloo",
                                "--set", "bond_n=8", "--out", "{out}"], "bond_n is not used by method rloo"),
    "kl_estimator with jbond": (["policy", "train", *SMOKE, "--set", "reward_model={files}/rm", "--set",
                                 "kl_estimator=k3_loss", "--out", "{out}"], "kl_estimator is not used by method jbond"),
    "beta_kl with bond": (["policy", "train", *SMOKE, "--set", "reward_model={files}/rm", "--set", "method=bond",
                           "--set", "beta_kl=0.1", "--out", "{out}"], "beta_kl is not used by method bond"),
    "rollout batch size": (["policy", "train", *SMOKE, "--set", "reward_model={files}/rm", "--set",
                            "sampling.batch_size=4", "--out", "{out}"], "sampling.batch_size is not used"),
    "rollout engine": (["policy", "train", *SMOKE, "--set", "reward_model={files}/rm", "--set", "sampling.engine=vllm",
                        "--out", "{out}"], "does not draw policy rollouts"),
    "study policy settings": (["study", *SMOKE, "--set", "policy.methods=[rloo]", "--set", "policy.settings={{lr: -1}}",
                               "--out", "{out}"], "policy.settings of cell"),
    # loaders
    "truncated safetensors": (["policy", "train", *SMOKE, "--set", "reward_model={files}/truncated", "--out", "{out}"],
                              "could not load a reward model"),
    "rm warm --out is a file": (["rm", "warm", "{files}/rm", "{files}/rm", "--out", "{files}/plain.txt"],
                                "not a directory"),
    "rm eval --out is a file": (["rm", "eval", "{files}/rm", "--data", "{files}/same.jsonl", "--out",
                                 "{files}/plain.txt"], "not a directory"),
    "--out under a file": (["run", *SMOKE, "--out", "{files}/plain.txt/run"], "{files}/plain.txt/run"),
    "gold builtin": (["run", "--world", "hf", "--set", "hf.policy={files}/hf/policy", "--set",
                      "hf.prompts={files}/hf/prompts.jsonl", "--set", "hf.gold=builtins:len", "--set",
                      "hf.proxy_backbone={files}/hf/proxy", "--out", "{out}"], "builtin"),
    "own proxy missing": (["run", *SMOKE, "--set", "proxy=[{files}/nope]", "--out", "{out}"], "nope"),
    # resume with nothing to resume
    "policy resume, no run": (["policy", "train", *SMOKE, "--set", "reward_model={files}/rm", "--resume", "--out",
                               "{out}"], "nothing to resume"),
    "rm resume, no run": (["rm", "train", *SMOKE, "--resume", "--out", "{out}"], "nothing to resume"),
    "study resume, no study": (["study", *SMOKE, "--resume", "--out", "{out}"], "nothing to resume"),
    # silent acceptance
    "chosen == rejected": (["rm", "train", *SMOKE, "--set", "data={files}/same.jsonl", "--out", "{out}"],
                           "same.jsonl:2: chosen and rejected are the same"),
    "unbounded completion": (["rm", "train", *SMOKE, "--set", "data={files}/long.jsonl", "--out", "{out}"],
                             "long.jsonl:1: chosen longer than"),
    "unbounded prompt": (["run", "--world", "hf", "--set", "hf.policy={files}/hf/policy", "--set",
                          "hf.prompts={files}/long_prompts.jsonl", "--set", "hf.gold=goodhart.worlds.smoke:gold",
                          "--set", "hf.proxy_backbone={files}/hf/proxy", "--out", "{out}"], "long_prompts.jsonl:1: prompt of"),
    "report of NaN rows": (["report", "{files}/nan_run"], "non-finite gold"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, files, name):
    args, message = CASES[name]
    before = sorted(p.name for p in files.rglob("*"))
    res, out = _case(tmp_path, files, args)
    assert_one_line_error(res, message.format(files=files))
    assert len(res.stderr.strip()) <= 500
    assert not out.exists(), f"{name}: {out} was created"
    assert sorted(p.name for p in files.rglob("*")) == before, f"{name}: wrote beside its inputs"


def test_cache_that_is_a_file_is_refused(tmp_path, files):
    res, out = _case(tmp_path, files, ["run", *SMOKE, "--out", "{out}"], env={"GOODHART_CACHE": str(files / "plain.txt")})
    assert_one_line_error(res, "is a file")
    assert not out.exists()


def test_error_echo_is_bounded(tmp_path, files):
    """A huge value (an alias bomb's expansion, a pasted file) is echoed in at most a few hundred characters."""
    res, out = _case(tmp_path, files, ["run", *SMOKE, "--set", "rm.lr=" + "x" * 100_000, "--out", "{out}"])
    assert_one_line_error(res, "rm.lr")
    assert len(res.stderr) < 600 and not out.exists()


def test_yaml_alias_bomb_is_echoed_in_one_short_line(tmp_path):
    """Nine levels of nested aliases (10^9 leaves if expanded) as a config value: one short error line."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines).replace("a8: &a8", "seed: &a8") + "\n")
    res = goodhart("run", "--world", "smoke", "-c", str(bomb), "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and len(res.stderr) < 600 and res.stderr.startswith("error: "), res.stderr[:300]
    assert not (tmp_path / "out").exists()


def test_version_and_method_option_are_listed():
    res = goodhart("--version")
    assert res.returncode == 0 and res.stdout.startswith("goodhart ")
    assert "--version" in goodhart("--help").stdout
    assert "--method" in goodhart("policy", "train", "--help").stdout


def test_bad_checkpoint_state_is_one_error(tmp_path):
    """A training state that is not goodhart's (torn, or an arbitrary pickle) is refused in one line."""
    from goodhart.device import load_state
    from goodhart.errors import GoodhartError

    bad = tmp_path / "checkpoint.pt"
    for junk in (b"\x80\x04\x95not a torch file", b"torn"):  # b"torn": the unpickler raised IndexError
        bad.write_bytes(junk)
        with pytest.raises(GoodhartError, match="not a goodhart training state"):
            load_state(bad)


def test_implicit_prompt_rows_are_read_like_trl():
    from goodhart.reward.data import normalise_preference

    row = normalise_preference({"chosen": "The film was good fun", "rejected": "The film was bad"})
    assert row == {"prompt": "The film was", "chosen": " good fun", "rejected": " bad"}


def test_doctor_fix_decides_on_named_rows():
    from goodhart.doctor import GGUF_ROW, row_ok

    rows = [("python", True, "3"), (GGUF_ROW, True, "x"), ("MiniLM-L6 (proxy backbone)", False, "missing"),
            ("cache", True, "c")]
    assert row_ok(rows, GGUF_ROW) is True and row_ok(rows, "MiniLM-L6 (proxy backbone)") is False


def _stderr_lines(res) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.strip()]


def test_second_writer_is_refused_and_the_first_writes_once(tmp_path):
    """Two `--overwrite` runs into one directory: the second is refused while the first holds the lock;
    the first's results appear exactly once and its lock is gone at the end."""
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    args = [sys.executable, "-m", "goodhart.cli", "run", *SMOKE, "--set", "data.eval_samples_per_prompt=32",
            "--set", "bon.bootstrap=0", "--set", "cache=false", "--out", str(out), "--overwrite"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")  # cache=false: a first run served from the cache could end too soon
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 120
        while not (out / ".goodhart.lock").exists() and time.time() < deadline:
            time.sleep(0.05)
        second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert_one_line_error(second, "being written by another goodhart process")
    rows = [json.loads(line) for line in open(out / "results.jsonl")]
    keys = [(r["reward_model"], r["n"]) for r in rows]
    assert len(keys) == len(set(keys)) == 4 * 32  # three proxies' curves and gold's, each once
    assert not (out / ".goodhart.lock").exists()


def test_stale_lock_and_staging_folders_are_cleared(tmp_path):
    """A lock left by a killed process (its pid is gone) is taken over; the hidden staging folder and
    temp file of an interrupted checkpoint save are removed by the next run."""
    out = tmp_path / "run"
    out.mkdir()
    (out / ".goodhart.lock").write_text("999999999 " + os.uname().nodename + "\n")
    (out / ".proxy_rm.abc123").mkdir()
    (out / ".proxy_rm.abc123" / "model.safetensors").write_bytes(b"partial")
    (out / ".results.jsonl.xyz.tmp").write_text("partial")
    res = goodhart("run", *SMOKE, "--set", "data.eval_samples_per_prompt=16", "--set", "bon.bootstrap=0",
                   "--out", str(out))
    assert res.returncode == 0, res.stderr
    hidden = sorted(p.name for p in Path(out).rglob(".*"))
    assert hidden == [], hidden


def _foreign_state(path: Path) -> None:
    """Another program's checkpoint where goodhart keeps its training state: a plain tensor dict."""
    import torch

    torch.save({"weight": torch.zeros(3)}, path)


@pytest.mark.parametrize("command", ["policy", "rm"])
def test_resume_on_a_foreign_state_is_one_line_and_rewrites_nothing(tmp_path, files, command):
    """--resume where the state file is not a goodhart training state: one error line (no torch warning lines),
    and the run's config.yaml and every other file byte-for-byte as they were."""
    run = tmp_path / "run"
    if command == "policy":
        args = ["policy", "train", *SMOKE, "--set", f"reward_model={files}/rm", "--set", "eval_every=2"]
        res = goodhart(*args, "--set", "steps=2", "--out", str(run))
        assert res.returncode == 0, res.stderr[-2000:]
        state = run / "checkpoint.pt"
        resume = [*args, "--set", "steps=4"]
    else:
        args = ["rm", "train", *SMOKE]
        res = goodhart(*args, "--out", str(run))
        assert res.returncode == 0, res.stderr[-2000:]
        (run / "results.jsonl").unlink()  # as if killed before it finished
        state = run / "rm_state.pt"
        resume = args
    _foreign_state(state)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    res = goodhart(*resume, "--resume", "--out", str(run))
    assert_one_line_error(res, "not a goodhart training state")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
