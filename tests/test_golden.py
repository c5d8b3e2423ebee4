"""Golden outputs of the smoke world: `run`, `rm suite`, `study`, `stopping`, `rm train` and `policy train`
write the same files with the same numbers as the one stored reference (tests/golden/smoke.json), within
each command's tolerance, on any CPU, so a refactor that is not meant to change results is caught
changing them. Pools are drawn with sampling.engine=hf; timing fields (`time/…`, `…_s`, `…per_s`) and
paths are left out (they differ run to run). Strings, integers and the files written must be equal.

Why tolerances, and these: matrix products round differently on AVX2, AVX-512 and scalar kernels, and
training amplifies the difference. TOLERANCE is at least ten times the largest relative difference measured between
the reference's own command run with torch's AVX2 kernels and with its scalar ones (ATEN_CPU_CAPABILITY=
default, MKL_ENABLE_INSTRUCTIONS=SSE4_2, ONEDNN_MAX_CPU_ISA=SSE41) on one machine, and between AVX2 and
AVX-512 machines' earlier references; the numbers are in benchmarks/README.md (2026-12-07). `run` and
`stopping` train their proxy at rm.lr 5e-4: at the smoke preset's 2e-3 the same rounding moved proxy scores
by up to 1.09 (chaotic training), at 5e-4 by 5e-4. Rewrite the reference (`python tests/test_golden.py
--write`) only for a change meant to change results, and say so in the commit message.
"""

import json
import math
import re
import sys
import tempfile
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "smoke.json"
COMPARED = ("results.jsonl", "metrics.jsonl", "samples.jsonl", "table.md", "curves.json")
# relative tolerance per command, |got − want| ≤ TOL · max(1, |want|): see the module docstring
TOLERANCE = {"run": 6e-3, "rm suite": 1e-3, "study": 2e-3, "stopping": 1e-3, "rm train": 3e-3,
             "policy train rloo": 2e-2, "policy train jbond": 2e-2}


def _timing(key: str) -> bool:
    return key.startswith("time/") or key.endswith("_s") or key.endswith("per_s") or key in {"reward_model", "init_from"}


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not _timing(k)}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _read(path: Path):
    if path.suffix == ".jsonl":
        return [_clean(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".json":
        return _clean(json.loads(path.read_text()))
    return path.read_text()


def _snapshot(run: Path) -> dict:
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    return {"files": files, "content": {f: _read(run / f) for f in files if Path(f).name in COMPARED}}


def golden_outputs(tmp: Path) -> dict:
    """Run the five commands on the smoke world (small settings) and snapshot their run directories."""
    from goodhart import config
    from goodhart.commands.policy_train import run_policy
    from goodhart.commands.rm_suite import run_rm_suite
    from goodhart.commands.run import run_bon_study
    from goodhart.commands.stopping import run_stopping
    from goodhart.commands.study import run_study
    from goodhart.reward.run import train_rm_run

    out = {}
    hf = "sampling.engine=hf"  # the engine the reference was sampled with (the default became fast in issue 16)
    calm = "rm.lr=5.0e-4"  # the smoke preset's 2e-3 turns ISA rounding into O(1) proxy differences (docstring)
    run_bon_study(config.load_run_config(world="smoke", overrides=["data.eval_samples_per_prompt=32", "bon.bootstrap=20",
                                                                  hf, calm]), tmp / "run")
    out["run"] = _snapshot(tmp / "run")
    run_rm_suite(config.load_rm_suite_config(world="smoke", overrides=["members=2", "warm_sizes=[2]", hf,
                                                                 "data.eval_samples_per_prompt=16"]), tmp / "suite")
    out["rm suite"] = _snapshot(tmp / "suite")
    run_study(config.load_study_config(world="smoke", overrides=[
        "grid.data_sizes=[48]", "data.eval_samples_per_prompt=16", "bon.bootstrap=20",
        "grid.aggregation=[single,ens,warm]", "members=2", hf]), tmp / "study")
    out["study"] = _snapshot(tmp / "study")
    run_stopping(config.load_stopping_config(world="smoke", overrides=["data.eval_prompts=6", hf, calm,
                                                                 "data.eval_samples_per_prompt=16"]), tmp / "stopping")
    out["stopping"] = _snapshot(tmp / "stopping")
    train_rm_run(config.load_rm_train_config(world="smoke", overrides=["rm.epochs=2", hf]), tmp / "rm")
    out["rm train"] = _snapshot(tmp / "rm")
    for method in ("rloo", "jbond"):
        run_policy(config.load_policy_train_config(world="smoke", overrides=[f"reward_model={tmp / 'rm'}",
                                                                        f"method={method}"]), tmp / method)
        out[f"policy train {method}"] = _snapshot(tmp / method)
    return out


def _assert_close(got, want, where: str, tol: float) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {sorted(set(got) ^ set(want))}"
        for k in want:
            _assert_close(got[k], want[k], f"{where}.{k}", tol)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: length {len(got)} vs {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, f"{where}[{i}]", tol)
    elif isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, int | float), f"{where}: {got!r} vs {want!r}"
        assert (math.isnan(want) and math.isnan(got)) or got == want or abs(got - want) <= tol * max(1.0, abs(want)), \
            f"{where}: {got!r} vs {want!r} (tolerance {tol:g})"
    elif isinstance(want, str) and where.endswith(".md"):  # a rendered table: its numbers within tol, words equal
        assert isinstance(got, str), f"{where}: {got!r} vs {want!r}"
        _assert_close(_tokens(got), _tokens(want), where + " (tokens)", tol)
    else:
        assert got == want, f"{where}: {got!r} vs {want!r}"


def _tokens(text: str) -> list:
    """A text as its words and numbers (numbers as floats), so a table is compared within a tolerance."""
    out = []
    for tok in re.findall(r"[-+−]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?|\S", text):
        try:
            out.append(float(tok.replace("−", "-").replace(",", "")))
        except ValueError:
            out.append(tok)
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return golden_outputs(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("command", sorted(TOLERANCE))
def test_smoke_outputs_equal_the_reference_within_the_cross_cpu_tolerance(outputs, command):
    want = json.loads(GOLDEN.read_text())[command]
    got = json.loads(json.dumps(outputs[command]))  # same types as the stored reference
    assert got["files"] == want["files"]
    _assert_close(got["content"], want["content"], command, TOLERANCE[command])


def test_the_tolerance_catches_a_change_beyond_it():
    """A number moved by twice a command's tolerance fails the comparison; within it, passes; a word fails."""
    want = {"a": [1.0, 2.5], "t.md": "| n | 10 | +0.125 |"}
    _assert_close({"a": [1.0, 2.5 + 2.4e-3], "t.md": "| n | 10 | +0.1251 |"}, want, "x", 1e-3)
    with pytest.raises(AssertionError):
        _assert_close({"a": [1.0, 2.5 + 5.1e-3], "t.md": want["t.md"]}, want, "x", 1e-3)
    with pytest.raises(AssertionError):
        _assert_close({"a": want["a"], "t.md": "| m | 10 | +0.125 |"}, want, "x", 1e-3)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden_outputs(Path(tmp)), indent=0, sort_keys=True))
        print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")
