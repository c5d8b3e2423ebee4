"""Golden outputs of the smoke world: `run`, `rm suite`, `study`, `stopping` and `policy train` write the
same files with the same numbers (to 1e-9) as the stored reference, so a refactor that is not meant to
change results is caught changing them. Pools are drawn with sampling.engine=hf, the engine the references
were written with; timing fields (`time/…`, `…_s`, `…per_s`) and paths are left out (they differ run to run).

Why one reference per CPU: the same code rounds matrix products differently on AVX-512 and AVX2 kernels and
across microarchitectures (relative differences ~1e-6 in RM margins, amplified by training), so 1e-9 equality
holds only where a reference was written: `smoke-<capability>-<vendor-family-model>.json` where it exists, else
`smoke-<capability>.json`. Rewrite a reference (`python tests/test_golden.py --write`) only for a change meant
to change results, and say so in the commit message; which commands each file covers, and why, is in the git log.
"""

import json
import math
import sys
import tempfile
from pathlib import Path

import pytest
import torch

CAPABILITY = torch.backends.cpu.get_cpu_capability()  # AVX2, AVX512, …: float rounding differs between them


def cpu_model() -> str:
    """'vendor-family-model' from /proc/cpuinfo ('' where there is none): two CPUs of one capability can still
    round differently (the BLAS picks its kernels per microarchitecture: measured on an AMD family 25 model 17,
    median 1e-6 relative from the AVX-512 reference written on another AVX-512 machine)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    fields: dict[str, str] = {}
    for key, _, value in (line.partition(":") for line in lines):
        fields.setdefault(key.strip(), value.strip())
    return "-".join(fields.get(k, "") for k in ("vendor_id", "cpu family", "model")).replace(" ", "")


def model_path(capability: str, model: str, folder: Path = Path(__file__).parent / "golden") -> Path:
    """The reference of one CPU model (what `--write` writes)."""
    return folder / f"smoke-{capability}-{model}.json"


def reference_path(capability: str, model: str, folder: Path = Path(__file__).parent / "golden") -> Path:
    """This CPU model's reference when one was written, else its capability's."""
    specific = model_path(capability, model, folder)
    return specific if model and specific.is_file() else folder / f"smoke-{capability}.json"


MODEL = cpu_model()
GOLDEN = reference_path(CAPABILITY, MODEL)
COMPARED = ("results.jsonl", "metrics.jsonl", "samples.jsonl", "table.md", "curves.json")
TOL = 1e-9


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
    run_bon_study(config.load_run_config(world="smoke", overrides=["data.eval_samples_per_prompt=32", "bon.bootstrap=20",
                                                                  hf]), tmp / "run")
    out["run"] = _snapshot(tmp / "run")
    run_rm_suite(config.load_rm_suite_config(world="smoke", overrides=["members=2", "warm_sizes=[2]", hf,
                                                                 "data.eval_samples_per_prompt=16"]), tmp / "suite")
    out["rm suite"] = _snapshot(tmp / "suite")
    run_study(config.load_study_config(world="smoke", overrides=[
        "grid.data_sizes=[48]", "data.eval_samples_per_prompt=16", "bon.bootstrap=20",
        "grid.aggregation=[single,ens,warm]", "members=2", hf]), tmp / "study")
    out["study"] = _snapshot(tmp / "study")
    run_stopping(config.load_stopping_config(world="smoke", overrides=["data.eval_prompts=6", hf,
                                                                 "data.eval_samples_per_prompt=16"]), tmp / "stopping")
    out["stopping"] = _snapshot(tmp / "stopping")
    train_rm_run(config.load_rm_train_config(world="smoke", overrides=["rm.epochs=2", hf]), tmp / "rm")
    out["rm train"] = _snapshot(tmp / "rm")
    for method in ("rloo", "jbond"):
        run_policy(config.load_policy_train_config(world="smoke", overrides=[f"reward_model={tmp / 'rm'}",
                                                                        f"method={method}"]), tmp / method)
        out[f"policy train {method}"] = _snapshot(tmp / method)
    return out


def _assert_close(got, want, where: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {sorted(set(got) ^ set(want))}"
        for k in want:
            _assert_close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: length {len(got)} vs {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, int | float), f"{where}: {got!r} vs {want!r}"
        assert (math.isnan(want) and math.isnan(got)) or got == want or abs(got - want) <= TOL * max(1.0, abs(want)), \
            f"{where}: {got!r} vs {want!r}"
    else:
        assert got == want, f"{where}: {got!r} vs {want!r}"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return golden_outputs(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("command", ["run", "rm suite", "study", "stopping", "rm train", "policy train rloo",
                                     "policy train jbond"])
def test_smoke_outputs_equal_the_pre_refactor_commit(outputs, command):
    if not GOLDEN.is_file():
        pytest.skip(f"no golden reference for CPU capability {CAPABILITY} (matrix products round differently "
                    f"on each ISA; write one with python tests/test_golden.py --write)")
    reference = json.loads(GOLDEN.read_text())
    if command not in reference:
        pytest.skip(f"{GOLDEN.name} has no '{command}' entry (its output changed by design since that reference "
                    "was written on a CPU of this capability; see the docstring)")
    want = reference[command]
    got = json.loads(json.dumps(outputs[command]))  # same types as the stored reference
    assert got["files"] == want["files"]
    _assert_close(got["content"], want["content"], command)


def test_reference_path_prefers_this_cpu_models_file_then_the_capabilitys(tmp_path):
    (tmp_path / "smoke-AVX512.json").write_text("{}")
    assert reference_path("AVX512", "AuthenticAMD-25-17", tmp_path).name == "smoke-AVX512.json"
    (tmp_path / "smoke-AVX512-AuthenticAMD-25-17.json").write_text("{}")
    assert reference_path("AVX512", "AuthenticAMD-25-17", tmp_path).name == "smoke-AVX512-AuthenticAMD-25-17.json"
    assert reference_path("AVX512", "GenuineIntel-6-106", tmp_path).name == "smoke-AVX512.json"
    assert reference_path("AVX512", "", tmp_path).name == "smoke-AVX512.json"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN = model_path(CAPABILITY, MODEL) if MODEL else GOLDEN
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(golden_outputs(Path(tmp)), indent=0, sort_keys=True))
        print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")
