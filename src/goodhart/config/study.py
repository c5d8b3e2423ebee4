"""Configs of the study-level entry points: `goodhart study` and `goodhart stopping` (SPEC §10)."""

from typing import Literal

from pydantic import Field, model_validator

from goodhart.config.base import MAX_SEED, BoNConfig, Seed, Strict, Sweep, WorldStudy, require_hf


class RMSizeSpec(Strict):
    """One proxy-RM size cut from the world's backbone (worlds/family.py); None keeps the backbone's."""

    layers: int | None = Field(None, ge=1, description="leading layers kept")
    hidden: int | None = Field(None, ge=1, description="hidden width (a multiple of the head width)")
    intermediate: int | None = Field(None, ge=1, description="feed-forward units per layer")
    lr: float | None = Field(None, gt=0, le=1.0, description="learning rate of this size (default rm.lr); "
                                                             "small models want larger ones")


class StudyGrid(Strict):
    """The sweep: every combination of these values is one cell (one RM, trained once)."""

    rm_sizes: dict[str, RMSizeSpec] = Field({"full": RMSizeSpec()}, min_length=1,
                                            description="name → size of the proxy RM family")
    data_sizes: list[int] = Field([1024], min_length=1, description="training comparisons per RM")
    label_noise: list[float] = Field([0.0], min_length=1, description="fractions ρ of flipped training labels")
    aggregation: list[Literal["single", "ens", "warm"]] = Field(
        ["single"], min_length=1, description="ens / warm train `members` RMs per cell from one shared init")
    seeds: list[Seed] = Field([0], min_length=1, description="RM seeds (init, pair draw, data order)")

    @model_validator(mode="after")
    def _check(self):
        if min(self.data_sizes) < 2 or any(not 0 <= r <= 0.5 for r in self.label_noise) or min(self.seeds) < 0 \
                or max(self.seeds) > MAX_SEED:
            raise ValueError(f"grid.data_sizes must be >= 2, grid.label_noise in [0, 0.5] and grid.seeds in "
                             f"[0, {MAX_SEED}]")
        for key in ("data_sizes", "label_noise", "aggregation", "seeds"):
            if len(set(getattr(self, key))) != len(getattr(self, key)):
                raise ValueError(f"grid.{key} has repeated values")
        return self


class StudyPolicy(Strict):
    """RL / J-BOND cells: `goodhart policy train` against the single RM of chosen grid cells."""

    methods: list[Literal["rloo", "reinforce", "jbond"]] = Field([], description="empty: Best-of-n only")
    kl_penalties: list[float] = Field([0.0], min_length=1, description="β_KL (RL) or γ (J-BOND) values")
    rm_sizes: list[str] | None = Field(None, min_length=1, description="RM sizes that get policy runs (default: all)")
    data_sizes: list[int] | None = Field(None, min_length=1, description="data sizes that get policy runs (default: the largest)")
    seeds: list[Seed] | None = Field(None, min_length=1, description="grid seeds whose RMs get policy runs (default: all)")
    settings: dict = Field({}, description="policy train keys (steps, lr, batch_prompts, …) over the world preset")

    @model_validator(mode="after")
    def _check(self):
        if any(b < 0 for b in self.kl_penalties):
            raise ValueError("policy.kl_penalties must be >= 0")
        return self


class StudyConfig(WorldStudy, Sweep):
    """`goodhart study`: a grid of proxy RMs (size × data × noise × aggregation × seed), each pushed by
    Best-of-n on one shared pool (and optionally by RL / J-BOND), with Gao fits and a report (SPEC §10).

    The prompt split and the policy samples depend on `seed` only (the grid's seeds are the RMs'), so every cell shares them (cached).
    rm.max_pairs and rm.label_noise are set per cell from the grid.
    """

    members: int = Field(3, ge=2, le=16, description="M for ens / warm cells")
    member_dropouts: list[float] = Field([0.1, 0.05, 0.15], min_length=1, description="cycled over members")
    bon: BoNConfig = Field(BoNConfig(bootstrap=50), description="Best-of-n on the shared pool: n values, bootstrap")
    samples_per_cell: int = Field(2, ge=0, description="eval prompts whose BoN picks at small/peak/max n are saved")
    grid: StudyGrid = Field(StudyGrid(), description="the RM cells: sizes × data sizes × noise × aggregation × seeds")
    policy: StudyPolicy = Field(StudyPolicy(), description="optional RL / J-BOND cells against grid RMs")

    @model_validator(mode="after")
    def _check(self):
        if self.bon.ns is not None and max(self.bon.ns) > self.data.eval_samples_per_prompt:
            raise ValueError("bon.ns goes beyond the pool size data.eval_samples_per_prompt")
        unknown = set(self.policy.rm_sizes or []) - set(self.grid.rm_sizes)
        if unknown:
            raise ValueError(f"policy.rm_sizes names sizes not in grid.rm_sizes: {sorted(unknown)}")
        if not set(self.policy.data_sizes or []) <= set(self.grid.data_sizes):
            raise ValueError("policy.data_sizes must be values of grid.data_sizes")
        if not set(self.policy.seeds or []) <= set(self.grid.seeds):
            raise ValueError("policy.seeds must be values of grid.seeds")
        if any(not 0 <= p < 1 for p in self.member_dropouts):
            raise ValueError("member_dropouts must lie in [0, 1)")
        require_hf(self)
        return self


class StoppingConfig(WorldStudy):
    """`goodhart stopping`: where should Best-of-n stop? Compares, on held-out prompts, the largest n,
    `recommend`'s hedged n, the best soft-BoN λ, a gold-free alarm (ensemble disagreement) and a fixed
    KL budget against the true gold-optimal n. Uses `goodhart run`'s samples (cached) by default."""

    members: int = Field(3, ge=2, le=16, description="ensemble members (shared init, own data order and dropout)")
    member_dropouts: list[float] = Field([0.1, 0.05, 0.15], min_length=1, description="cycled over members")
    tolerance: float = Field(0.1, ge=0, description="gold units the hedged n may lose against the predicted peak")
    alarm_ratio: float = Field(1.5, gt=1, description="stop before member disagreement at the pick reaches "
                                                       "this multiple of its value at n = 1")
    fixed_kl: float = Field(1.0, gt=0, description="the fixed KL budget (nats) to compare with")
    lams: list[float] = Field([0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0], min_length=1, description="soft-BoN λ grid")

    @model_validator(mode="after")
    def _check(self):
        if any(x <= 0 for x in self.lams):
            raise ValueError("lams must be > 0")
        if self.data.eval_prompts < 2:
            raise ValueError("data.eval_prompts must be >= 2 (half choose, half check)")
        require_hf(self)
        return self
