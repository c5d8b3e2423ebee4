"""Resolving a config: world preset (presets.yaml) < YAML file < `--set key=value` overrides.

Unknown keys and out-of-range values are refused with a one-line GoodhartError that names the key.
"""

import reprlib
from functools import cache, partial
from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel, ValidationError

from goodhart.config.base import DEFAULT_WORLD, WorldName
from goodhart.config.commands import (
    PolicyParetoConfig,
    PolicyTrainConfig,
    RMSuiteConfig,
    RMTrainConfig,
    RunConfig,
)
from goodhart.config.study import StoppingConfig, StudyConfig
from goodhart.errors import GoodhartError

# the entry point whose presets each config model takes (presets.yaml top-level keys)
PRESET_OF = {RunConfig: "run", RMTrainConfig: "rm_train", RMSuiteConfig: "rm_suite", PolicyTrainConfig: "policy_train",
             PolicyParetoConfig: "policy_pareto", StudyConfig: "study", StoppingConfig: "stopping"}


@cache
def _presets() -> dict:
    return yaml.safe_load((Path(__file__).parent / "presets.yaml").read_text())


def preset(entry: str, world: str) -> dict:
    """The defaults of entry point `entry` (a presets.yaml key) on `world`; {} where none are set."""
    return merge({}, _presets().get(entry, {}).get(world) or {})


# mappings that a file or --set replaces whole instead of merging key by key (a size family is one choice)
_REPLACED = {"rm_sizes"}


def merge(base: dict, extra: dict) -> dict:
    """`extra` over `base`, mappings merged key by key (except those in _REPLACED, replaced whole)."""
    out = dict(base)
    for k, v in extra.items():
        nested = isinstance(v, dict) and isinstance(out.get(k), dict) and k not in _REPLACED
        out[k] = merge(out[k], v) if nested else v
    return out


def parse_overrides(items: list[str]) -> dict:
    """['rm.lr=1e-4', 'data.eval_prompts=4'] → nested dict; values parsed as YAML scalars/lists."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise GoodhartError(f"--set expects key=value with a dotted key (e.g. rm.lr=1e-4), got {item!r}")
        value = yaml.safe_load(raw) if raw.strip() else None
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise GoodhartError(f"--set {item!r} conflicts with another --set for {p!r}")
        node[parts[-1]] = value
    return out


_ECHO = reprlib.Repr()  # attributes, not keywords: Python 3.10/3.11's Repr takes none
_ECHO.maxlevel, _ECHO.maxlist, _ECHO.maxdict, _ECHO.maxstring, _ECHO.maxother = 3, 6, 6, 160, 160


def _format_errors(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = _ECHO.repr(err.get("input"))  # bounded even for a YAML alias bomb (nested aliased lists)
            parts.append(f"{loc}: {msg} (got {got})" if loc else msg)
    return "invalid config: " + "; ".join(parts)


def validate(model: type[BaseModel], data: dict) -> BaseModel:
    """Validate `data` against `model`, turning pydantic's report into one GoodhartError line."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise GoodhartError(_format_errors(e)) from None


def load_yaml(path: str | Path | None) -> dict:
    """The mapping in a YAML config file ({} for None); a missing file, bad YAML or a non-mapping is refused."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise GoodhartError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise GoodhartError(f"config file {path} is not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise GoodhartError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GoodhartError(f"config file {path} must hold a mapping of keys, got {type(data).__name__}")
    return data


def load_config(model: type[BaseModel], path=None, world: str | None = None, overrides=()) -> BaseModel:
    """Resolve `model` from its world preset, a YAML file and --set overrides (in that precedence)."""
    file_data, set_data = load_yaml(path), parse_overrides(list(overrides))
    name = world or set_data.get("world") or file_data.get("world") or DEFAULT_WORLD
    if name not in get_args(WorldName):
        raise GoodhartError(f"unknown world {name!r}; choose one of {', '.join(get_args(WorldName))}")
    merged = merge(merge(preset(PRESET_OF[model], name), file_data), set_data)
    merged["world"] = name
    return validate(model, merged)


load_run_config = partial(load_config, RunConfig)
load_rm_train_config = partial(load_config, RMTrainConfig)
load_rm_suite_config = partial(load_config, RMSuiteConfig)
load_policy_train_config = partial(load_config, PolicyTrainConfig)
load_policy_pareto_config = partial(load_config, PolicyParetoConfig)
load_study_config = partial(load_config, StudyConfig)
load_stopping_config = partial(load_config, StoppingConfig)
