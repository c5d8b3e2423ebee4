"""Config: presets, YAML + --set precedence, refusal of unknown keys and out-of-range values."""

import pytest

from goodhart import GoodhartError, RunConfig, load_run_config
from goodhart.config import parse_overrides


def test_defaults_and_presets():
    assert load_run_config().world == "lab"
    smoke = load_run_config(world="smoke")
    assert smoke.world == "smoke" and smoke.sampling.max_new_tokens == 12
    assert RunConfig().data.eval_samples_per_prompt == 128


def test_yaml_then_set_precedence(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("world: smoke\nrm:\n  lr: 0.01\n  epochs: 3\n")
    cfg = load_run_config(path, overrides=["rm.epochs=5", "bon.ns=[1, 2, 4]"])
    assert cfg.world == "smoke" and cfg.rm.lr == 0.01 and cfg.rm.epochs == 5 and cfg.bon.ns == [1, 2, 4]
    assert load_run_config(path, world="sentiment").rm.max_length == 96  # --world beats the file's world


@pytest.mark.parametrize("override,message", [
    (["rm.lrr=1"], "unknown key 'rm.lrr'"),
    (["rm.lr=-1"], "rm.lr: Input should be greater than 0"),
    (["rm.label_noise=0.7"], "rm.label_noise"),
    (["bon.ns=[0, 4]"], "n >= 1"),
    (["bon.ns=[1, 1000]"], "pool has N"),
    (["data.eval_samples_per_prompt=0"], "data.eval_samples_per_prompt"),
    (["seed=abc"], "seed"),
    (["rm"], "key=value"),
    (["family_pairs=[1]"], "family_pairs must be distinct data sizes"),
    (["family_pairs=[64, 64]"], "family_pairs must be distinct data sizes"),
    (["family_pairs=[64]", "proxy=[some/rm]"], "drop family_pairs"),
])
def test_bad_values_are_one_line_errors(override, message):
    with pytest.raises(GoodhartError, match=message) as e:
        load_run_config(world="smoke", overrides=override)
    assert "\n" not in str(e.value)


def test_bad_files_and_worlds(tmp_path):
    with pytest.raises(GoodhartError, match="does not exist"):
        load_run_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(GoodhartError, match="mapping"):
        load_run_config(bad)
    with pytest.raises(GoodhartError, match="unknown world"):
        load_run_config(world="moon")
    with pytest.raises(GoodhartError, match="hf.policy"):
        load_run_config(world="hf")


def test_parse_overrides_nested_and_typed():
    assert parse_overrides(["a.b=1", "a.c=x", "d=[1, 2]"]) == {"a": {"b": 1, "c": "x"}, "d": [1, 2]}


@pytest.mark.parametrize("name", ["study-sentiment.yaml", "study-gao.yaml"])
def test_shipped_study_configs_load(name):
    from pathlib import Path

    from goodhart.config import load_study_config

    cfg = load_study_config(Path(__file__).parents[1] / "configs" / name)
    assert cfg.grid.data_sizes and cfg.data.eval_prompts >= 8
    if name == "study-gao.yaml":  # issue 15: ≥ 16 prompts, 3 seeds, the learned-gold world
        assert cfg.world == "gao" and cfg.data.eval_prompts >= 16 and len(cfg.grid.seeds) == 3
