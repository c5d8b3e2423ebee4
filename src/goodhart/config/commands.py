"""One config model per entry point: `run`, `rm train`, `rm suite`, `policy train`, `policy pareto`."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from goodhart.config.base import (
    DEFAULT_WORLD,
    MAX_SEED,
    BoNConfig,
    Compute,
    HFWorldConfig,
    LogSinks,
    RewardModelConfig,
    SamplingConfig,
    Seed,
    Strict,
    Sweep,
    WorldName,
    WorldStudy,
    require_hf,
)
from goodhart.config.study import RMSizeSpec


class RunRL(Strict):
    """The RL leg of `goodhart run`: RLOO against proxies of the run's family, on the run's own prompts."""

    steps: int = Field(0, ge=0, description="RLOO steps against each chosen proxy after Best-of-n (0: no RL leg); "
                                            "Best-of-n stops at d = sqrt(log N − (N−1)/N), RL goes further along d")
    proxies: Literal["weakest", "weakest+main", "all"] = Field(
        "weakest+main", description="which proxies of the family the policy is trained against, one run each")
    lr: float = Field(1e-4, gt=0, le=1.0, description="AdamW learning rate (constant)")
    beta_kl: float = Field(0.0, ge=0, description="β_KL: KL(π‖π_ref) penalty in the reward (0: none, the most pressure)")
    batch_prompts: int = Field(16, ge=1, description="prompts per step, drawn from the run's training prompts")
    samples_per_prompt: int = Field(4, ge=2, description="rollouts per prompt (RLOO's leave-one-out baseline needs 2)")
    eval_every: int = Field(20, ge=1, description="steps between evaluations on the run's evaluation prompts")
    eval_samples_per_prompt: int = Field(16, ge=1, description="policy samples per evaluation prompt at each evaluation")


class RunConfig(WorldStudy):
    """`goodhart run`: sample → label → train a proxy RM → Best-of-n gold vs proxy curves."""

    bon: BoNConfig = Field(BoNConfig(), description="Best-of-n evaluation: n values and bootstrap resamples")
    proxy: list[str] = Field([], description="use these RM checkpoints as the proxy, untrained here: one checkpoint "
                                             "/ run / WARM / ensemble dir, or several for a mean ensemble")
    family_pairs: list[int] = Field(
        [128, 512], description="data sizes of the weaker proxies trained beside the main one (rm.max_pairs "
                                "comparisons), each on the first comparisons of the main one's (nested subsets), "
                                "all drawn on one plot; sizes not below the main one's are skipped; [] = the "
                                "main proxy only")
    proxy_format: Literal["auto", "pair", "concat", "chat"] = Field(
        "auto", description="how own proxies read (prompt, completion): auto = as each was trained (recorded by "
                            "goodhart; trl checkpoints: concat), else its chat template where it has one, else a "
                            "text pair; pair | concat (prompt + completion + eos) | chat (its own template)")
    rl: RunRL = Field(RunRL(), description="the RL leg: RLOO against the trained proxies after Best-of-n")

    @model_validator(mode="after")
    def _check(self):
        N = self.data.eval_samples_per_prompt
        if self.proxy and self.rl.steps:
            raise ValueError("the RL leg (rl.steps > 0) trains against the proxies trained here; with your own "
                             "proxy use `goodhart policy train --set reward_model=…`, or set rl.steps=0")
        if self.bon.ns is not None and max(self.bon.ns) > N:
            raise ValueError(f"bon.ns goes up to {max(self.bon.ns)} but the pool has N = data.eval_samples_per_prompt = {N}")
        if any(p < 2 for p in self.family_pairs) or len(set(self.family_pairs)) < len(self.family_pairs):
            raise ValueError(f"family_pairs must be distinct data sizes ≥ 2, got {self.family_pairs}")
        if self.proxy and self.family_pairs and self.family_pairs != type(self).model_fields["family_pairs"].default:
            raise ValueError("family_pairs trains proxies here; with your own proxy (proxy=…) nothing is trained: "
                             "drop family_pairs")
        require_hf(self)
        return self


class RMTrainConfig(Compute, LogSinks):
    """`goodhart rm train`: one Bradley–Terry RM from a preference file or a world's gold-labelled samples."""

    world: WorldName = Field(DEFAULT_WORLD, description="world whose policy samples (and proxy backbone) are used")
    data: str | None = Field(None, description="preference JSONL (prompt, chosen, rejected[, flipped]) or datasets "
                                               "name; default: gold-labelled samples of the world's policy")
    data_split: str = Field("train", description="split of a datasets preference source")
    backbone: str | None = Field(None, description="encoder checkpoint; default: the world's proxy backbone")
    init_from: str | None = Field(None, description="fine-tune from this RM checkpoint (a shared WARM initialisation)")
    dropout: float | None = Field(None, ge=0, lt=1, description="set every dropout probability of the model")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="prompt choice, samples, pair draw, initialisation and data order")
    cache: bool = Field(True, description="reuse policy samples cached for the same world, prompts and settings")
    prompts: int = Field(60, ge=2, description="world prompts sampled for comparisons")
    samples_per_prompt: int = Field(8, ge=2, description="policy samples per prompt; pairs are drawn within a prompt")
    checkpoint_every: int = Field(100, ge=0, description="steps between resumable training states (0: none)")
    sampling: SamplingConfig = Field(SamplingConfig(), description="how the world's samples are drawn")
    rm: RewardModelConfig = Field(RewardModelConfig(), description="comparisons and Bradley–Terry training")
    hf: HFWorldConfig = Field(HFWorldConfig(), description="the hf world's policy, prompts, gold and proxy backbone")

    @model_validator(mode="after")
    def _check(self):
        if self.world == "hf" and self.data is None and (self.hf.policy is None or self.hf.prompts is None
                                                         or self.hf.gold is None):
            raise ValueError("rm train on world 'hf' needs hf.policy, hf.prompts and hf.gold (or a data file)")
        if self.world == "hf" and self.backbone is None and self.init_from is None and self.hf.proxy_backbone is None:
            raise ValueError("rm train on world 'hf' needs backbone, init_from or hf.proxy_backbone")
        return self


class RMSuiteConfig(WorldStudy, Sweep):
    """`goodhart rm suite`: members from a shared initial run → single / ENS mean / WCO / UWO / WARM,
    evaluated on clean, flipped and OOD pairs and as the proxy of Best-of-n (SPEC §5–§6)."""

    members: int = Field(6, ge=2, le=32, description="M: members fine-tuned from the shared initial run")
    member_lrs: list[float] = Field([1e-5, 4e-5, 1e-4], min_length=1, description="cycled over members (WARM §5)")
    member_dropouts: list[float] = Field([0.05, 0.1], min_length=1, description="cycled over members")
    member_epochs: int = Field(1, ge=1, description="epochs of each member's fine-tuning from the shared run")
    warm_sizes: list[int] = Field([2, 4, 6], min_length=1, description="M values for WARM and the ensembles")
    uwo_lam: float = Field(1.0, ge=0, description="λ of UWO on member scores standardised on the initial policy")
    ood_prompts: int = Field(30, ge=0, description="prompts from the world's OOD domain (0: skip OOD)")
    ood_samples_per_prompt: int = Field(6, ge=2, description="samples per OOD prompt (pairs within a prompt)")
    bon: BoNConfig = Field(BoNConfig(bootstrap=0), description="Best-of-n of each aggregate on the pool")
    seeds: list[Seed] | None = Field(None, min_length=1, description="replicates: each seed draws its own "
                                    "comparisons, shared run and members (default: [seed])")
    noise_levels: list[float] | None = Field(None, min_length=1, description="label-noise levels ρ, the whole "
                                             "suite at each (default: [rm.label_noise])")
    rm_size: RMSizeSpec = Field(RMSizeSpec(), description="the members' size cut from the world's backbone "
                                "(worlds/family.py; default: the whole backbone); its lr trains the shared run")
    independent: int = Field(2, ge=0, le=8, description="members trained independently from the pretrained "
                             "backbone (own head init and data order, Coste et al.): their ENS and their weight "
                             "average (WARM's stated limit); 0 skips them")

    @model_validator(mode="after")
    def _check(self):
        if any(not 0 <= r < 0.5 for r in self.noise_levels or []):
            raise ValueError(f"noise_levels must lie in [0, 0.5), got {self.noise_levels}")
        if self.independent == 1:
            raise ValueError("independent must be 0 (skip) or >= 2 (an ensemble and a weight average need two)")
        if max(self.warm_sizes) > self.members or min(self.warm_sizes) < 2:
            raise ValueError(f"warm_sizes must lie in [2, members = {self.members}], got {self.warm_sizes}")
        if any(lr <= 0 for lr in self.member_lrs) or any(not 0 <= p < 1 for p in self.member_dropouts):
            raise ValueError("member_lrs must be > 0 and member_dropouts in [0, 1)")
        if self.bon.ns is not None and max(self.bon.ns) > self.data.eval_samples_per_prompt:
            raise ValueError("bon.ns goes beyond the pool size data.eval_samples_per_prompt")
        require_hf(self)
        return self

    def replicates(self) -> list[tuple[float, int]]:
        """(ρ, seed) of every replicate, in run order."""
        return [(r, s) for r in (self.noise_levels or [self.rm.label_noise]) for s in (self.seeds or [self.seed])]


# settings that only some policy methods read (SPEC §7–§9): set to a non-default value for another
# method, they are refused rather than silently ignored
METHOD_KEYS = {
    "kl_estimator": ("rloo", "reinforce"), "reward_shaping": ("rloo", "reinforce"),
    "shaping_ref_samples": ("rloo", "reinforce"), "baseline_decay": ("reinforce",),
    "beta_kl": ("rloo", "reinforce", "jbond"), "bond_n": ("bond",), "bond_divergence": ("bond",),
    "jeffreys_beta": ("bond", "jbond"), "ema": ("jbond",), "concurrent_sampling": ("bond", "jbond"),
}


def unused_method_keys(cfg, method: str) -> list[str]:
    """Method-specific keys of `cfg` whose value differs from the default but that `method` does not read."""
    fields = PolicyTrainConfig.model_fields
    return [k for k, methods in METHOD_KEYS.items() if method not in methods and getattr(cfg, k) != fields[k].default]


class Norm(BaseModel):
    """(shift, scale) of gold and of proxy: a reported value is (raw − shift) / scale (SPEC §5)."""

    model_config = ConfigDict(extra="forbid")
    gold: tuple[float, float] = Field(..., description="(shift, scale) of the gold reward")
    proxy: tuple[float, float] = Field(..., description="(shift, scale) of the proxy reward")

    @model_validator(mode="after")
    def _check(self):
        if self.gold[1] <= 0 or self.proxy[1] <= 0:
            raise ValueError("norm scales must be > 0")
        return self


class RolloutSampling(SamplingConfig):
    """How policy rollouts are drawn: one batch through the training policy."""

    engine: Literal["hf", "prefix", "fast", "vllm"] = Field(
        "hf", description="hf: transformers generate (the default; the policy grid's published runs used it) | "
                          "fast: the fast engine's fp32 decode loop, same law (in one process at fp32 precision "
                          "without LoRA, else generate; 1.19x per evaluation on 2 cores, benchmarks/README.md)")


class PolicyTrainConfig(Compute, LogSinks):
    """`goodhart policy train`: move the policy against a proxy RM with RL (RLOO / REINFORCE) or
    BOND / J-BOND, measuring gold, proxy and KL to the initial policy as it goes (SPEC §7–§9)."""

    world: WorldName = Field(DEFAULT_WORLD, description="where the policy, prompts and gold come from")
    reward_model: str = Field(..., description="proxy RM: checkpoint, `rm train` run dir, WARM dir or ensemble dir")
    method: Literal["rloo", "reinforce", "bond", "jbond"] = Field(
        "jbond", description="rloo / reinforce (SPEC §8), bond (fixed anchor) or jbond (EMA anchor, SPEC §9)")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="prompt split, sampling and batch order")
    prompt_seed: int | None = Field(None, ge=0, le=MAX_SEED, description="seed of the eval / train prompt split "
                                    "alone (default: seed); `policy pareto` holds it fixed across its seeds")
    steps: int = Field(40, ge=1, description="optimizer steps")
    batch_prompts: int = Field(8, ge=1, description="B: prompts per step")
    samples_per_prompt: int = Field(2, ge=1, description="k policy samples per prompt (RLOO needs k ≥ 2)")
    lr: float = Field(1e-5, gt=0, le=1.0, description="AdamW learning rate (constant)")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient-norm clip")
    beta_kl: float = Field(0.0, ge=0, description="β_KL: KL(π‖π_ref) penalty for rloo/reinforce; γ (KL to the anchor) for jbond")
    kl_estimator: Literal["k1_reward", "k3_loss"] = Field("k1_reward", description="where the KL penalty goes (SPEC §7)")
    bond_n: int = Field(4, ge=2, description="N of the BoN target for method bond (anchor samples per prompt)")
    bond_divergence: Literal["forward", "backward", "jeffreys"] = Field(
        "jeffreys", description="method bond: KL(π_BoN‖π), KL(π‖π_BoN) or their Jeffreys mix (jeffreys_beta)")
    jeffreys_beta: float = Field(0.5, ge=0, le=1, description="β of J_β = (1 − β)·forward + β·backward")
    ema: float = Field(0.02, ge=0, le=1, description="anchor EMA rate η for jbond (0: fixed anchor)")
    concurrent_sampling: bool = Field(True, description="bond/jbond: draw the anchor's and the policy's samples side "
                                      "by side (two threads, half the CPU threads each; one process on a CPU), each "
                                      "from its own seeded generator: the same samples as one after the other")
    baseline_decay: float = Field(0.9, ge=0, lt=1, description="REINFORCE moving-average baseline")
    reward_shaping: Literal["none", "sigmoid_ref"] = Field(
        "none", description="rloo/reinforce: mean_j σ(r − r_ref,j) − ½ over reference-policy samples of the prompt")
    shaping_ref_samples: int = Field(2, ge=1, description="reference samples per prompt for reward_shaping")
    lora: bool = Field(False, description="train LoRA adapters (peft) instead of all weights")
    lora_rank: int = Field(8, ge=1, description="LoRA rank r (alpha = 2r) when lora is on")
    train_prompts: int = Field(120, ge=1, description="prompts batches are drawn from")
    eval_prompts: int = Field(16, ge=1, description="held-out prompts scored by gold and proxy at each evaluation")
    eval_samples_per_prompt: int = Field(2, ge=1, description="policy samples per eval prompt at each evaluation")
    eval_every: int = Field(5, ge=1, description="steps between evaluations (and one at the end)")
    eval_bootstrap: int = Field(200, ge=0, description="prompt-bootstrap resamples for each evaluation's gold / proxy "
                                "interval (gold_lo, gold_hi; resampling eval prompts, SPEC §11); 0: none")
    norm: Norm | None = Field(None, description="fixed (shift, scale) of gold and proxy for every evaluation, e.g. "
                              "from a shared reference pool (`policy pareto` sets it); None: the first evaluation's "
                              "samples (the initial policy) define them")
    eval_initial: bool = Field(True, description="evaluate the initial policy at step 0; false needs `norm` "
                               "(`policy pareto` sets it and takes that row from its reference pool instead)")
    checkpoint_every: int = Field(10, ge=1, description="steps between resumable checkpoints")
    keep_state: bool = Field(True, description="keep the final resumable state (checkpoint.pt: weights, optimizer, "
                             "anchor; ≈ 3× the policy) so `--resume --set steps=N` can extend the run; false deletes "
                             "it once the final policy is saved")
    sampling: RolloutSampling = Field(RolloutSampling(), description="how rollouts are sampled")
    hf: HFWorldConfig = Field(HFWorldConfig(), description="the hf world's policy, prompts and gold")

    @model_validator(mode="after")
    def _check(self):
        if self.method == "rloo" and self.samples_per_prompt < 2:
            raise ValueError("method rloo needs samples_per_prompt >= 2 (leave-one-out baseline)")
        if type(self) is PolicyTrainConfig:  # a pareto config spans methods; its runs are checked one by one
            unused = unused_method_keys(self, self.method)
            if unused:
                used_by = "; ".join(f"{k} by {'/'.join(METHOD_KEYS[k])}" for k in unused)
                raise ValueError(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used by method "
                                 f"{self.method} (used: {used_by})")
        if not self.eval_initial and self.norm is None and type(self) is PolicyTrainConfig:
            raise ValueError("eval_initial=false needs norm (the initial policy's evaluation defines it otherwise)")
        if self.sampling.batch_size != SamplingConfig().batch_size:
            raise ValueError("sampling.batch_size is not used by policy train (rollouts are one batch through the "
                             "training policy); leave it out")
        if self.sampling.engine not in ("fast", "hf"):
            raise ValueError(f"sampling.engine={self.sampling.engine} does not draw policy rollouts: use hf "
                             "(generate, the default) or fast (the fast engine where it applies, else generate)")
        return self


class PolicyParetoConfig(PolicyTrainConfig, Sweep):
    """`goodhart policy pareto`: RLOO at several β_KL and J-BOND, each a `policy train` run, on one
    gold/proxy-vs-KL plot (SPEC §8–§9: is J-BOND's reward/KL front better than RL's at every β?)."""

    rl_betas: list[float] = Field([0.0, 0.05, 0.2], description="β_KL values for RLOO")
    jbond_gammas: list[float] = Field([0.0], description="γ (KL to the anchor) values for J-BOND")
    bond_divergences: list[Literal["forward", "backward", "jeffreys"]] = Field(
        [], description="BOND runs with a fixed anchor (bond_n, jeffreys_beta), one per divergence")
    reference_samples: int = Field(64, ge=2, description="initial-policy samples per eval prompt: one gold and one "
                                   "proxy normalisation for every run of the grid, and the Best-of-n curve on the "
                                   "same axis (n ≤ this)")
    bon_bootstrap: int = Field(200, ge=0, description="prompt-bootstrap resamples of the reference Best-of-n curve")
    seeds: list[Seed] | None = Field(None, min_length=1, description="training seeds of every cell (claims pool them, SPEC §11); "
                                    "None: one run per cell with `seed`")
    reward_models: dict[str, str] = Field({}, description="the reward-model axis: more proxies (name: path, e.g. "
                                          "{warm: runs/w, ens: runs/e}) that the rm_axis_cells also train against, "
                                          "as <cell>@<name>; gold stays in the reference's units")
    rm_axis_cells: list[str] = Field(["jbond-beta0", "rloo-beta0"], description="cells run against every "
                                     "reward_models entry too (names as in the grid: rloo-beta0, bond-forward, …)")
    keep_state: bool = Field(False, description="keep each run's final resumable state (checkpoint.pt, ≈ 1.6 GB "
                             "for SmolLM2-135M) next to its policy (0.5 GB); the grid's runs are finished once their "
                             "policy is saved (a longer `steps` reruns them)")
    method_lr: dict[Literal["rloo", "bond", "jbond"], float] = Field(
        {}, description="learning rate per method, in place of lr (e.g. {rloo: 1.0e-5}): at one lr RLOO's KL grows "
                        "~10× faster per step than J-BOND's, and the claims compare methods where their KL ranges overlap")
    method_steps: dict[Literal["rloo", "bond", "jbond"], int] = Field(
        {}, description="training steps per method, in place of steps (e.g. {bond: 250, jbond: 250}): BOND's gold "
                        "moves more slowly than RLOO's, and its claims need the run no longer rising")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data):
        if isinstance(data, dict) and "workers" in data:
            raise ValueError("workers is replaced by executor: ray (each run a Ray task; ray.num_cpus and "
                             "ray.cpus_per_cell set how many train at once)")
        return data

    @model_validator(mode="after")
    def _check_grid(self):
        if any(b < 0 for b in self.rl_betas + self.jbond_gammas):
            raise ValueError("rl_betas and jbond_gammas must be >= 0")
        if any(lr <= 0 for lr in self.method_lr.values()):
            raise ValueError(f"method_lr values must be > 0, got {self.method_lr}")
        if any(n < 1 for n in self.method_steps.values()):
            raise ValueError(f"method_steps values must be >= 1, got {self.method_steps}")
        if not (self.rl_betas or self.jbond_gammas or self.bond_divergences):
            raise ValueError("the grid is empty: give rl_betas, jbond_gammas or bond_divergences")
        if self.norm is not None or not self.eval_initial:
            raise ValueError(f"{'norm' if self.norm is not None else 'eval_initial'} is set by policy pareto from "
                             "its reference pool; leave it out")
        names = {c for c, _, _ in self._method_cells()}
        if self.reward_models and not set(self.rm_axis_cells) & names:
            raise ValueError(f"rm_axis_cells {self.rm_axis_cells} names no cell of the grid ({sorted(names)})")
        if any(not n.isidentifier() for n in self.reward_models):
            raise ValueError("reward_models names must be plain words (letters, digits, _), e.g. warm, ens")
        return self

    def _method_cells(self) -> list[tuple[str, str, dict]]:
        cells = [(f"rloo-beta{b:g}", "rloo", {"beta_kl": b}) for b in self.rl_betas]
        cells += [(f"jbond-beta{g:g}", "jbond", {"beta_kl": g}) for g in self.jbond_gammas]
        return cells + [(f"bond-{d}", "bond", {"bond_divergence": d, "beta_kl": 0.0}) for d in self.bond_divergences]

    def cells(self) -> list[tuple[str, str, dict]]:
        """(cell name, method, settings) of every method × setting of the grid, then the rm_axis_cells
        against each of reward_models as <cell>@<name>."""
        cells = self._method_cells()
        return cells + [(f"{c}@{name}", m, u | {"reward_model": path}) for name, path in self.reward_models.items()
                        for c, m, u in cells if c in self.rm_axis_cells]

    def runs(self) -> list[tuple[str, PolicyTrainConfig]]:
        """(sub-run name, config) for every cell and seed: <cell>, or <cell>-s<seed> when seeds are given
        (each seed trains and samples anew; the prompt split stays the one of `seed`)."""
        base = self.model_dump(exclude={"rl_betas", "jbond_gammas", "bond_divergences", "reference_samples",
                                        "bon_bootstrap", "seeds", "reward_models", "rm_axis_cells", "method_lr",
                                        "method_steps", "executor", "ray"})
        defaults = {k: PolicyTrainConfig.model_fields[k].default for k in METHOD_KEYS}
        seeds = [(f"-s{s}", {"seed": s, "prompt_seed": self.seed}) for s in self.seeds] if self.seeds else [("", {})]
        per_method = {"lr": self.method_lr, "steps": self.method_steps}  # each in place of its key, for its methods
        # a key meant for another method of the grid keeps its default in this method's runs
        return [(name + tail, PolicyTrainConfig.model_validate(
                    base | {k: defaults[k] for k in unused_method_keys(self, m)} | {"method": m}
                    | {k: v[m] for k, v in per_method.items() if m in v} | update | seeded))
                for name, m, update in self.cells() for tail, seeded in seeds]
