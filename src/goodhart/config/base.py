"""Config building blocks shared by the entry points: sections (sampling, data, rm, bon, hf), compute."""

import os
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

WorldName = Literal["lab", "lab-tiny", "lab-small", "lab-tiny-small", "smoke", "sentiment", "gao", "hf"]
DEFAULT_WORLD = "lab"  # the world built for the phenomenon (worlds/lab.py); lab-tiny is its seconds-long variant for tests, lab-small its smaller policy (same gold and proxies), lab-tiny-small that at test size


def _on_off(value):
    """YAML reads on/off as booleans; for the on|off|auto switches they mean "on" / "off"."""
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


# YAML reads on/off as booleans; for these switches they mean "on" / "off"
OnOffAuto = Annotated[Literal["auto", "on", "off"], BeforeValidator(_on_off)]


MAX_SEED = 2**32 - 1  # numpy's legacy seeding (seed_everything) takes 32-bit seeds
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]  # an element of a seed list


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SamplingConfig(Strict):
    """How completions are drawn from the (initial) policy."""

    max_new_tokens: int = Field(32, ge=1, le=4096, description="tokens generated per completion")
    temperature: float = Field(1.0, gt=0, description="sampling temperature (1.0 = the policy itself)")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling; 1.0 = pure sampling (Gao)")
    batch_size: int = Field(128, ge=1, description="sequences per generate() call (the fast engine's matrix "
                                                   "products are most efficient at ≥ 128 rows on a CPU)")
    engine: Literal["hf", "prefix", "fast", "vllm"] = Field(
        "fast", description="Best-of-n pools: transformers generate (hf); the same with each prompt computed once "
                          "and its KV cache shared by its samples (prefix); a hand-written decode loop that also "
                          "drops finished rows (fast: see benchmarks/README.md for its speed and distribution "
                          "checks); or vLLM (extra goodhart[vllm], GPU only)")
    dtype: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="the fast engine's decoder body (attention on an fp32 KV cache, logits always fp32): "
                          "auto = bf16 where bf16 is native (CPU with AVX-512 BF16 or AMX, or a GPU), else fp32")


class DataConfig(Strict):
    """How many prompts and samples feed RM training and the Best-of-n evaluation pool."""

    train_prompts: int = Field(60, ge=2, description="prompts whose samples make RM comparisons")
    train_samples_per_prompt: int = Field(8, ge=2, description="samples per training prompt; pairs are drawn within a prompt")
    eval_prompts: int = Field(8, ge=1, description="held-out prompts for the BoN evaluation pool")
    eval_samples_per_prompt: int = Field(128, ge=1, description="N: the BoN pool size per evaluation prompt")


class RewardModelConfig(Strict):
    """Bradley–Terry proxy reward-model training (SPEC §5)."""

    lr: float = Field(3e-5, gt=0, le=1.0, description="AdamW learning rate (linear decay, 10% warm-up)")
    epochs: int = Field(2, ge=1, description="passes over the training comparisons")
    batch_size: int = Field(8, ge=1, description="comparisons per step")
    max_length: int = Field(96, ge=8, description="proxy tokens per (prompt, completion)")
    max_pairs: int = Field(1024, ge=2, description="training comparisons (subsampled from all within-prompt pairs)")
    val_fraction: float = Field(0.15, gt=0, lt=1, description="share of training prompts held out for validation")
    labels: Literal["deterministic", "sampled"] = Field(
        "deterministic", description="gold decides the winner, or winner ~ σ((g_a − g_b)/τ)"
    )
    label_temperature: float = Field(0.1, gt=0, description="τ for sampled labels")
    label_noise: float = Field(0.0, ge=0, le=0.5, description="fraction ρ of training labels flipped")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
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
    prompts_split: str = Field("train", description="split of a datasets prompt source")
    prompt_field: str = Field("prompt", description="field of each prompt row that holds the prompt text")
    gold: str | None = Field(None, description="sequence-classification checkpoint dir, or module:function")
    proxy_backbone: str | None = Field(None, description="encoder checkpoint for the proxy RM (num_labels=1 head)")
    prompt_template: str = Field("{prompt}", description="text given to the policy; {prompt} is replaced")
    chat_template: OnOffAuto = Field("auto", description="render prompts with the policy tokenizer's chat template (auto: where it has one)")
    trust_remote_code: bool = Field(False, description="allow checkpoints to run their own Python code (off: safetensors weights only)")

    @model_validator(mode="after")
    def _check_template(self):
        if "{prompt}" not in self.prompt_template:
            raise ValueError("hf.prompt_template must contain {prompt}")
        return self


class Compute(Strict):
    """Where tensors run; under torchrun, how training is split across processes (README "Scaling out")."""

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available (each torchrun rank its LOCAL_RANK GPU), else CPU")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: autocast forward passes to bfloat16 (GPU runs); weights and optimizer stay fp32")
    parallel: Literal["ddp", "fsdp"] = Field(
        "ddp", description="under torchrun: ddp (a full model per process) or fsdp (parameters sharded across "
                           "processes, for models that do not fit one device)")


class LogSinks(Strict):
    """Where step metrics go besides metrics.jsonl."""

    log_to: list[Literal["tensorboard", "wandb"]] = Field([], description="metric sinks beside metrics.jsonl "
                                                                         "(extras goodhart[tensorboard] / [wandb])")
    wandb_project: str = Field("goodhart", description="W&B project name when log_to has wandb")


class RayConfig(Strict):
    """Where `executor: ray` runs a sweep's cells (docs/scale.md)."""

    address: str | None = Field(None, description="null: start a Ray on this machine for the sweep (stopped at its "
                                "end); auto: the cluster `ray start` runs here; ray://host:10001: a remote cluster")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the Ray started here (null: every core of this "
                                 "machine); ignored when joining a cluster")
    cpus_per_cell: float = Field(1, gt=0, description="CPUs a cell asks Ray for; its torch threads are this, "
                                 "rounded down (at least 1)")
    gpus_per_cell: float = Field(0, ge=0, description="GPUs a cell asks Ray for (0.5: two cells share a GPU)")
    max_retries: int = Field(2, ge=0, description="times a cell is started again on another worker when its "
                             "worker process dies (killed, out of memory); a cell that raises is not retried")


class Sweep(Strict):
    """How a sweep runs its independent cells."""

    executor: Literal["local", "ray"] = Field("local", description="local: one cell after another in this process; "
                                              "ray: each cell a Ray task, placed by the resources it asks for "
                                              "(ray.*), its output in <out>/logs/<cell>.log")
    ray: RayConfig = Field(RayConfig(), description="the Ray cluster and what each cell asks of it")

    @model_validator(mode="after")
    def _not_under_torchrun(self):
        # read as runs.launched() does (WORLD_SIZE), without importing a floor above this one
        if self.executor == "ray" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ValueError("executor: ray spreads the cells over processes itself; run the command without torchrun")
        return self


class WorldStudy(Compute, LogSinks):
    """Settings every world-level study shares: which world, seeds, device, sampling, data, RM training."""

    world: WorldName = Field(DEFAULT_WORLD, description="where policy, prompts, gold and proxy backbone come from")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="prompt split, policy samples, pair draws and RM initialisation")
    cache: bool = Field(True, description="reuse policy samples (and `run`'s trained proxies) cached for the same world, prompts and settings")
    sampling: SamplingConfig = Field(SamplingConfig(), description="how completions are drawn from the policy")
    data: DataConfig = Field(DataConfig(), description="prompts and samples for RM training and the BoN pool")
    rm: RewardModelConfig = Field(RewardModelConfig(), description="proxy RM data and Bradley–Terry training")
    hf: HFWorldConfig = Field(HFWorldConfig(), description="the hf world's policy, prompts, gold and proxy backbone")


def require_hf(cfg) -> None:
    if cfg.world == "hf":
        missing = [k for k in ("policy", "prompts", "gold", "proxy_backbone") if getattr(cfg.hf, k) is None]
        if missing:
            raise ValueError(f"world 'hf' needs hf.{', hf.'.join(missing)}")
