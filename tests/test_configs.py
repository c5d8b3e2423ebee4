"""Every shipped config under configs/ loads with the loader of the command its header names."""

from pathlib import Path

import pytest

from goodhart import config

CONFIGS = Path(__file__).parents[1] / "configs"
LOADERS = {"study": config.load_study_config, "rm-suite": config.load_rm_suite_config,
           "policy-pareto": config.load_policy_pareto_config, "pareto": config.load_policy_pareto_config}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_loads(path):
    kind = next(k for k in sorted(LOADERS, key=len, reverse=True) if path.stem.startswith(k))
    cfg = LOADERS[kind](path)
    assert cfg.world in ("lab", "lab-small", "sentiment", "gao", "smoke")
    if kind in ("policy-pareto", "pareto"):  # the full grids (3 seeds) and the 2-core one (2 seeds)
        names = [n for n, _ in cfg.runs()]
        assert len(names) == len(set(names)) and len(names) >= 8 and len(cfg.seeds) >= 2
        assert {c.split("-s")[0] for c in names} >= {"rloo-beta0", "rloo-beta0.2", "jbond-beta0", "bond-jeffreys"}
        assert len(cfg.seeds) >= 3 or path.stem.endswith("-cpu")
