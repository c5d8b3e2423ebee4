"""Configuration: one pydantic model per entry point, YAML file + `--set key=value` overrides.

Precedence: world preset < YAML file < --set. Unknown keys and out-of-range values are refused
with a one-line GoodhartError that names the key.
"""

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from goodhart.errors import GoodhartError

WorldName = Literal["smoke", "sentiment", "hf"]


def _on_off(value):
    """YAML reads on/off as booleans; for the on|off|auto switches they mean "on" / "off"."""
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


# YAML reads on/off as booleans; for these switches they mean "on" / "off"
OnOffAuto = Annotated[Literal["auto", "on", "off"], BeforeValidator(_on_off)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SamplingConfig(Strict):
    """How completions are drawn from the (initial) policy."""

    max_new_tokens: int = Field(32, ge=1, le=4096, description="tokens generated per completion")
    temperature: float = Field(1.0, gt=0, description="sampling temperature (1.0 = the policy itself)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling; 1.0 = pure sampling (Gao)")
    batch_size: int = Field(64, ge=1, description="sequences per generate() call")
    engine: Literal["hf", "vllm"] = Field(
        "hf", description="Best-of-n pools: transformers generate (hf) or vLLM (extra goodhart[vllm], GPU only)")


class DataConfig(Strict):
    """How many prompts and samples feed RM training and the Best-of-n evaluation pool."""

    train_prompts: int = Field(60, ge=2, description="prompts whose samples make RM comparisons")
    train_samples_per_prompt: int = Field(8, ge=2, description="samples per training prompt; pairs are drawn within a prompt")
    eval_prompts: int = Field(8, ge=1, description="held-out prompts for the BoN evaluation pool")
    eval_samples_per_prompt: int = Field(128, ge=1, description="N: the BoN pool size per evaluation prompt")


class RewardModelConfig(Strict):
    """Bradley–Terry proxy reward-model training (SPEC §5)."""

    lr: float = Field(3e-5, gt=0, le=1.0)
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(8, ge=1, description="comparisons per step")
    max_length: int = Field(96, ge=8, description="proxy tokens per (prompt, completion)")
    max_pairs: int = Field(1024, ge=2, description="training comparisons (subsampled from all within-prompt pairs)")
    val_fraction: float = Field(0.15, gt=0, lt=1, description="share of training prompts held out for validation")
    labels: Literal["deterministic", "sampled"] = Field(
        "deterministic", description="gold decides the winner, or winner ~ σ((g_a − g_b)/τ)"
    )
    label_temperature: float = Field(0.1, gt=0, description="τ for sampled labels")
    label_noise: float = Field(0.0, ge=0, le=0.5, description="fraction ρ of training labels flipped")
    weight_decay: float = Field(0.0, ge=0)
    center_coef: float = Field(0.0, ge=0, description="reward centering: + coef·(r_chosen + r_rejected)² in the loss")


class RMTraining(Strict):
    """Everything `train_reward_model` needs, passed whole; build it with `RMTraining.of(cfg)` so every
    command trains with the same settings of its config (rm.*, precision, parallel)."""

    lr: float = Field(3e-5, gt=0, le=1.0, description="AdamW learning rate (linear decay, 10% warm-up)")
    epochs: int = Field(2, ge=1, description="passes over the training comparisons")
    batch_size: int = Field(8, ge=1, description="comparisons per step")
    max_length: int = Field(96, ge=8, description="tokens per (prompt, completion)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    center_coef: float = Field(0.0, ge=0, description="reward centering: + coef·(r_chosen + r_rejected)² in the loss")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16: autocast the forward pass")
    parallel: Literal["ddp", "fsdp"] = Field("ddp", description="under torchrun: ddp or fsdp")
    checkpoint_every: int = Field(0, ge=0, description="steps between resumable training states (0: none)")

    @classmethod
    def of(cls, cfg, **changes) -> "RMTraining":
        """The training settings of an entry-point config: its `rm` section, `precision`, `parallel` and
        (rm train) `checkpoint_every`; `changes` override single fields (a member's lr or epochs)."""
        rm = cfg.rm
        values = {k: getattr(rm, k) for k in ("lr", "epochs", "batch_size", "max_length", "weight_decay",
                                              "center_coef")}
        values |= {"precision": cfg.precision, "parallel": cfg.parallel,
                   "checkpoint_every": getattr(cfg, "checkpoint_every", 0)}
        return cls(**(values | {k: v for k, v in changes.items() if v is not None}))


class BoNConfig(Strict):
    """Best-of-n evaluation from the pool (SPEC §2, §3)."""

    ns: list[int] | None = Field(None, description="n values to report; default: all n, or log-spaced for large N")
    bootstrap: int = Field(200, ge=0, description="bootstrap resamples of each prompt's pool for the bands")

    @model_validator(mode="after")
    def _check_ns(self):
        if self.ns is not None and (not self.ns or min(self.ns) < 1):
            raise ValueError(f"bon.ns must be a non-empty list of n >= 1, got {self.ns}")
        return self


class HFWorldConfig(Strict):
    """The `hf` world: bring your own policy, prompts, gold and proxy backbone (local dirs work offline)."""

    policy: str | None = Field(None, description="causal LM: hub id or local dir")
    prompts: str | None = Field(None, description="JSONL file with a prompt field, or a datasets name/path")
    prompts_split: str = "train"
    prompt_field: str = "prompt"
    gold: str | None = Field(None, description="sequence-classification checkpoint dir, or module:function")
    proxy_backbone: str | None = Field(None, description="encoder checkpoint for the proxy RM (num_labels=1 head)")
    prompt_template: str = Field("{prompt}", description="text given to the policy; {prompt} is replaced")
    chat_template: OnOffAuto = "auto"
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _check_template(self):
        if "{prompt}" not in self.prompt_template:
            raise ValueError("hf.prompt_template must contain {prompt}")
        return self


class Compute(Strict):
    """Where tensors run; under torchrun, how training is split across processes (README "Scaling out")."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: autocast forward passes to bfloat16 (GPU runs); weights and optimizer stay fp32")
    parallel: Literal["ddp", "fsdp"] = Field(
        "ddp", description="under torchrun: ddp (a full model per process) or fsdp (parameters sharded across "
                           "processes, for models that do not fit one device)")


class WorldStudy(Compute):
    """Settings every world-level study shares: which world, seeds, device, sampling, data, RM training."""

    world: WorldName = "sentiment"
    seed: int = Field(0, ge=0)
    cache: bool = Field(True, description="reuse policy samples cached for the same world, prompts and settings")
    sampling: SamplingConfig = SamplingConfig()
    data: DataConfig = DataConfig()
    rm: RewardModelConfig = RewardModelConfig()
    hf: HFWorldConfig = HFWorldConfig()
    log_to: list[Literal["tensorboard", "wandb"]] = Field([], description="metric sinks beside metrics.jsonl "
                                                                         "(extras goodhart[tensorboard] / [wandb])")
    wandb_project: str = "goodhart"


class RunConfig(WorldStudy):
    """`goodhart run`: sample → label → train a proxy RM → Best-of-n gold vs proxy curves."""

    bon: BoNConfig = BoNConfig()
    proxy: list[str] = Field([], description="use these RM checkpoints as the proxy, untrained here: one checkpoint "
                                             "/ run / WARM / ensemble dir, or several for a mean ensemble")
    proxy_chat_template: OnOffAuto = Field(
        "auto", description="score own proxies through their tokenizer's chat template (auto: where one exists)")

    @model_validator(mode="after")
    def _check(self):
        N = self.data.eval_samples_per_prompt
        if self.bon.ns is not None and max(self.bon.ns) > N:
            raise ValueError(f"bon.ns goes up to {max(self.bon.ns)} but the pool has N = data.eval_samples_per_prompt = {N}")
        _require_hf(self)
        return self


class RMTrainConfig(Compute):
    """`goodhart rm train`: one Bradley–Terry RM from a preference file or a world's gold-labelled samples."""

    world: WorldName = "sentiment"
    data: str | None = Field(None, description="preference JSONL (prompt, chosen, rejected[, flipped]) or datasets "
                                               "name; default: gold-labelled samples of the world's policy")
    data_split: str = "train"
    backbone: str | None = Field(None, description="encoder checkpoint; default: the world's proxy backbone")
    init_from: str | None = Field(None, description="fine-tune from this RM checkpoint (a shared WARM initialisation)")
    dropout: float | None = Field(None, ge=0, lt=1, description="set every dropout probability of the model")
    seed: int = Field(0, ge=0)
    cache: bool = True
    prompts: int = Field(60, ge=2, description="world prompts sampled for comparisons")
    samples_per_prompt: int = Field(8, ge=2)
    checkpoint_every: int = Field(100, ge=0, description="steps between resumable training states (0: none)")
    log_to: list[Literal["tensorboard", "wandb"]] = Field([], description="metric sinks beside metrics.jsonl "
                                                                         "(extras goodhart[tensorboard] / [wandb])")
    wandb_project: str = "goodhart"
    sampling: SamplingConfig = SamplingConfig()
    rm: RewardModelConfig = RewardModelConfig()
    hf: HFWorldConfig = HFWorldConfig()

    @model_validator(mode="after")
    def _check(self):
        if self.world == "hf" and self.data is None and (self.hf.policy is None or self.hf.prompts is None
                                                         or self.hf.gold is None):
            raise ValueError("rm train on world 'hf' needs hf.policy, hf.prompts and hf.gold (or a data file)")
        if self.world == "hf" and self.backbone is None and self.init_from is None and self.hf.proxy_backbone is None:
            raise ValueError("rm train on world 'hf' needs backbone, init_from or hf.proxy_backbone")
        return self


class RMSuiteConfig(WorldStudy):
    """`goodhart rm suite`: members from a shared initial run → single / ENS mean / WCO / UWO / WARM,
    evaluated on clean, flipped and OOD pairs and as the proxy of Best-of-n (SPEC §5–§6)."""

    members: int = Field(6, ge=2, le=32, description="M: members fine-tuned from the shared initial run")
    member_lrs: list[float] = Field([1e-5, 4e-5, 1e-4], min_length=1, description="cycled over members (WARM §5)")
    member_dropouts: list[float] = Field([0.05, 0.1], min_length=1, description="cycled over members")
    member_epochs: int = Field(1, ge=1)
    warm_sizes: list[int] = Field([2, 4, 6], min_length=1, description="M values for WARM and the ensembles")
    uwo_lam: float = Field(1.0, ge=0, description="λ of UWO on member scores standardised on the initial policy")
    ood_prompts: int = Field(30, ge=0, description="prompts from the world's OOD domain (0: skip OOD)")
    ood_samples_per_prompt: int = Field(6, ge=2)
    bon: BoNConfig = BoNConfig(bootstrap=0)

    @model_validator(mode="after")
    def _check(self):
        if max(self.warm_sizes) > self.members or min(self.warm_sizes) < 2:
            raise ValueError(f"warm_sizes must lie in [2, members = {self.members}], got {self.warm_sizes}")
        if any(lr <= 0 for lr in self.member_lrs) or any(not 0 <= p < 1 for p in self.member_dropouts):
            raise ValueError("member_lrs must be > 0 and member_dropouts in [0, 1)")
        if self.bon.ns is not None and max(self.bon.ns) > self.data.eval_samples_per_prompt:
            raise ValueError("bon.ns goes beyond the pool size data.eval_samples_per_prompt")
        _require_hf(self)
        return self


class PolicyTrainConfig(Compute):
    """`goodhart policy train`: move the policy against a proxy RM with RL (RLOO / REINFORCE) or
    BOND / J-BOND, measuring gold, proxy and KL to the initial policy as it goes (SPEC §7–§9)."""

    world: WorldName = "sentiment"
    reward_model: str = Field(..., description="proxy RM: checkpoint, `rm train` run dir, WARM dir or ensemble dir")
    method: Literal["rloo", "reinforce", "bond", "jbond"] = "jbond"
    seed: int = Field(0, ge=0)
    steps: int = Field(40, ge=1)
    batch_prompts: int = Field(8, ge=1, description="B: prompts per step")
    samples_per_prompt: int = Field(2, ge=1, description="k policy samples per prompt (RLOO needs k ≥ 2)")
    lr: float = Field(1e-5, gt=0, le=1.0)
    max_grad_norm: float = Field(1.0, gt=0)
    beta_kl: float = Field(0.0, ge=0, description="β_KL: KL(π‖π_ref) penalty for rloo/reinforce; γ (KL to the anchor) for jbond")
    kl_estimator: Literal["k1_reward", "k3_loss"] = Field("k1_reward", description="where the KL penalty goes (SPEC §7)")
    bond_n: int = Field(4, ge=2, description="N of the BoN target for method bond (anchor samples per prompt)")
    bond_divergence: Literal["forward", "backward", "jeffreys"] = "jeffreys"
    jeffreys_beta: float = Field(0.5, ge=0, le=1, description="β of J_β = (1 − β)·forward + β·backward")
    ema: float = Field(0.02, ge=0, le=1, description="anchor EMA rate η for jbond (0: fixed anchor)")
    baseline_decay: float = Field(0.9, ge=0, lt=1, description="REINFORCE moving-average baseline")
    reward_shaping: Literal["none", "sigmoid_ref"] = Field(
        "none", description="rloo/reinforce: mean_j σ(r − r_ref,j) − ½ over reference-policy samples of the prompt")
    shaping_ref_samples: int = Field(2, ge=1, description="reference samples per prompt for reward_shaping")
    lora: bool = Field(False, description="train LoRA adapters (peft) instead of all weights")
    lora_rank: int = Field(8, ge=1)
    train_prompts: int = Field(120, ge=1)
    eval_prompts: int = Field(16, ge=1, description="held-out prompts scored by gold and proxy at each evaluation")
    eval_samples_per_prompt: int = Field(2, ge=1)
    eval_every: int = Field(5, ge=1)
    checkpoint_every: int = Field(10, ge=1)
    log_to: list[Literal["tensorboard", "wandb"]] = Field([], description="metric sinks beside metrics.jsonl "
                                                                         "(extras goodhart[tensorboard] / [wandb])")
    wandb_project: str = "goodhart"
    sampling: SamplingConfig = SamplingConfig()
    hf: HFWorldConfig = HFWorldConfig()

    @model_validator(mode="after")
    def _check(self):
        if self.method == "rloo" and self.samples_per_prompt < 2:
            raise ValueError("method rloo needs samples_per_prompt >= 2 (leave-one-out baseline)")
        return self


def _require_hf(cfg) -> None:
    if cfg.world == "hf":
        missing = [k for k in ("policy", "prompts", "gold", "proxy_backbone") if getattr(cfg.hf, k) is None]
        if missing:
            raise ValueError(f"world 'hf' needs hf.{', hf.'.join(missing)}")


# Each world's defaults; the smoke world is sized to finish in seconds.
PRESETS: dict[str, dict] = {
    "sentiment": {},
    "hf": {},
    "smoke": {
        "sampling": {"max_new_tokens": 12, "batch_size": 128},
        "data": {"train_prompts": 32, "train_samples_per_prompt": 8, "eval_prompts": 4, "eval_samples_per_prompt": 64},
        "rm": {"lr": 2e-3, "epochs": 4, "batch_size": 16, "max_length": 32, "max_pairs": 768},
    },
}


RM_PRESETS: dict[str, dict] = {
    "sentiment": {}, "hf": {},
    "smoke": {"prompts": 32, "sampling": PRESETS["smoke"]["sampling"], "rm": PRESETS["smoke"]["rm"]},
}


# The suite's default is WARM's and Coste's corrupted-label setting, ρ = 0.25.
SUITE_PRESETS: dict[str, dict] = {
    "sentiment": {"rm": {"label_noise": 0.25}}, "hf": {"rm": {"label_noise": 0.25}},
    "smoke": {"sampling": PRESETS["smoke"]["sampling"], "data": PRESETS["smoke"]["data"],
              "rm": {**PRESETS["smoke"]["rm"], "epochs": 2, "label_noise": 0.25}, "member_lrs": [1e-3, 2e-3, 3e-3], "member_epochs": 2,
              "members": 4, "warm_sizes": [2, 4], "ood_prompts": 16},
}


# mappings that a file or --set replaces whole instead of merging key by key (a size family is one choice)
_REPLACED = {"rm_sizes"}


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        merge = isinstance(v, dict) and isinstance(out.get(k), dict) and k not in _REPLACED
        out[k] = _merge(out[k], v) if merge else v
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


def _format_errors(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{loc}'")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}: {msg} (got {err.get('input')!r})" if loc else msg)
    return "invalid config: " + "; ".join(parts)


def validate(model: type[BaseModel], data: dict) -> BaseModel:
    """Validate `data` against `model`, turning pydantic's report into one GoodhartError line."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise GoodhartError(_format_errors(e)) from None


def load_yaml(path: str | Path | None) -> dict:
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise GoodhartError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise GoodhartError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GoodhartError(f"config file {path} must hold a mapping of keys, got {type(data).__name__}")
    return data


def _resolve(model: type[BaseModel], presets: dict, path, world: str | None, overrides) -> BaseModel:
    file_data, set_data = load_yaml(path), parse_overrides(list(overrides))
    name = world or set_data.get("world") or file_data.get("world") or "sentiment"
    if name not in presets:
        raise GoodhartError(f"unknown world {name!r}; choose one of {', '.join(presets)}")
    merged = _merge(_merge(presets[name], file_data), set_data)
    merged["world"] = name
    return validate(model, merged)


def load_run_config(path=None, world: str | None = None, overrides: list[str] = ()) -> RunConfig:
    """Resolve a RunConfig from the world preset, a YAML file and --set overrides."""
    return _resolve(RunConfig, PRESETS, path, world, overrides)


def load_rm_train_config(path=None, world: str | None = None, overrides: list[str] = ()) -> RMTrainConfig:
    """Resolve an RMTrainConfig (world preset < file < --set)."""
    return _resolve(RMTrainConfig, RM_PRESETS, path, world, overrides)


def load_rm_suite_config(path=None, world: str | None = None, overrides: list[str] = ()) -> RMSuiteConfig:
    """Resolve an RMSuiteConfig (world preset < file < --set)."""
    return _resolve(RMSuiteConfig, SUITE_PRESETS, path, world, overrides)


class PolicyParetoConfig(PolicyTrainConfig):
    """`goodhart policy pareto`: RLOO at several β_KL and J-BOND, each a `policy train` run, on one
    gold/proxy-vs-KL plot (SPEC §8–§9: is J-BOND's reward/KL front better than RL's at every β?)."""

    rl_betas: list[float] = Field([0.0, 0.05, 0.2], min_length=1, description="β_KL values for RLOO")
    jbond_gammas: list[float] = Field([0.0], min_length=1, description="γ (KL to the anchor) values for J-BOND")

    @model_validator(mode="after")
    def _check_grid(self):
        if any(b < 0 for b in self.rl_betas + self.jbond_gammas):
            raise ValueError("rl_betas and jbond_gammas must be >= 0")
        return self

    def runs(self) -> list[tuple[str, PolicyTrainConfig]]:
        """(sub-run name, config) for every cell of the grid."""
        base = self.model_dump(exclude={"rl_betas", "jbond_gammas"})
        cells = [("rloo", b) for b in self.rl_betas] + [("jbond", g) for g in self.jbond_gammas]
        return [(f"{m}-beta{b:g}", PolicyTrainConfig.model_validate(base | {"method": m, "beta_kl": b}))
                for m, b in cells]


POLICY_PRESETS: dict[str, dict] = {
    "sentiment": {}, "hf": {},
    "smoke": {"sampling": PRESETS["smoke"]["sampling"], "lr": 3e-3, "steps": 12, "train_prompts": 40,
              "eval_prompts": 8, "eval_samples_per_prompt": 4, "eval_every": 4, "checkpoint_every": 4},
}


def load_policy_train_config(path=None, world: str | None = None, overrides: list[str] = ()) -> PolicyTrainConfig:
    """Resolve a PolicyTrainConfig (world preset < file < --set)."""
    return _resolve(PolicyTrainConfig, POLICY_PRESETS, path, world, overrides)


def load_policy_pareto_config(path=None, world: str | None = None, overrides: list[str] = ()) -> PolicyParetoConfig:
    """Resolve a PolicyParetoConfig (world preset < file < --set)."""
    return _resolve(PolicyParetoConfig, POLICY_PRESETS, path, world, overrides)


# The study-level entry points live in config/study.py (this module would pass 400 lines).
from goodhart.config.study import (  # noqa: E402
    STOPPING_PRESETS,
    STUDY_PRESETS,
    RMSizeSpec,
    StoppingConfig,
    StudyConfig,
    StudyGrid,
    StudyPolicy,
    load_stopping_config,
    load_study_config,
)

__all__ = ["STOPPING_PRESETS", "STUDY_PRESETS", "RMSizeSpec", "StoppingConfig", "StudyConfig", "StudyGrid",
           "StudyPolicy", "load_stopping_config", "load_study_config"]
