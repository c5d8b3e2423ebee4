"""Every shipped config under configs/ loads with the loader of the command its header names."""

from pathlib import Path

import pytest

from goodhart import config

CONFIGS = Path(__file__).parents[1] / "configs"
LOADERS = {"study": config.load_study_config, "rm-suite": config.load_rm_suite_config,
           "policy-pareto": config.load_policy_pareto_config}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_loads(path):
    kind = next(k for k in sorted(LOADERS, key=len, reverse=True) if path.stem.startswith(k))
    cfg = LOADERS[kind](path)
    assert cfg.world in ("sentiment", "gao", "smoke")
    if kind == "policy-pareto":
        assert len(cfg.runs()) == 16 and len({n for n, _ in cfg.runs()}) == 16
        assert {c.split("-s")[0] for c, _ in cfg.runs()} >= {"rloo-beta1", "jbond-beta0", "bond-jeffreys"}
