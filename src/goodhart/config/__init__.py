"""Configuration: one pydantic model per entry point (config/commands.py, config/study.py) built from
shared sections (config/base.py); world presets are data (config/presets.yaml); one loader (config/load.py):
world preset < YAML file < `--set key=value`. Unknown keys and out-of-range values are refused with a
one-line GoodhartError that names the key.
"""

from goodhart.config.base import (
    BoNConfig,
    Compute,
    DataConfig,
    HFWorldConfig,
    OnOffAuto,
    RewardModelConfig,
    RMTraining,
    SamplingConfig,
    Strict,
    WorldName,
    WorldStudy,
)
from goodhart.config.commands import (
    PolicyParetoConfig,
    PolicyTrainConfig,
    RMSuiteConfig,
    RMTrainConfig,
    RunConfig,
)
from goodhart.config.load import (
    load_config,
    load_policy_pareto_config,
    load_policy_train_config,
    load_rm_suite_config,
    load_rm_train_config,
    load_run_config,
    load_stopping_config,
    load_study_config,
    load_yaml,
    merge,
    parse_overrides,
    preset,
    validate,
)
from goodhart.config.study import RMSizeSpec, StoppingConfig, StudyConfig, StudyGrid, StudyPolicy

__all__ = [
    "BoNConfig", "Compute", "DataConfig", "HFWorldConfig", "OnOffAuto", "PolicyParetoConfig", "PolicyTrainConfig",
    "RMSizeSpec", "RMSuiteConfig", "RMTrainConfig", "RMTraining", "RewardModelConfig", "RunConfig", "SamplingConfig",
    "StoppingConfig", "Strict", "StudyConfig", "StudyGrid", "StudyPolicy", "WorldName", "WorldStudy", "load_config",
    "load_policy_pareto_config", "load_policy_train_config", "load_rm_suite_config", "load_rm_train_config",
    "load_run_config", "load_stopping_config", "load_study_config", "load_yaml", "merge", "parse_overrides", "preset",
    "validate",
]
