"""`goodhart policy train`: RLOO / REINFORCE (SPEC §8) and BOND / J-BOND (SPEC §9) against a proxy RM.

One loop, CleanRL-style: sample → score with the proxy → loss → step (→ EMA anchor), with gold,
proxy and KL(π‖π_ref) measured on held-out prompts every `eval_every` steps. Written by hand: trl
1.16 has no PPO/BOND trainer, and its RLOO trainer cannot score decoded text with a proxy RM that
uses another tokenizer (nor an ensemble). Each step reseeds torch from (seed, step), so a resumed
run samples exactly what an uninterrupted one would.
"""

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from goodhart import dist
from goodhart.device import autocast, load_state, resolve_device, seed_everything
from goodhart.errors import GoodhartError
from goodhart.policy.bond import ema_update
from goodhart.policy.kl import kl_in_reward, kl_per_sequence
from goodhart.policy.losses import bond_loss, rl_loss, shaped_reward
from goodhart.policy.rows import eval_row, row_common
from goodhart.progress import console, progress_bar
from goodhart.reward.ensemble import aggregate
from goodhart.reward.load import load_reward_model
from goodhart.reward.normalise import normalisation
from goodhart.runs import (
    METRICS,
    RESULTS,
    RunDir,
    atomic_write_bytes,
    read_jsonl,
    require_run,
    resume_run,
    save_checkpoint,
    write_jsonl,
)
from goodhart.sampling.engines import fast_engine_fits, fast_policy_rollout
from goodhart.sampling.rollout import Rollout, encode_prompts, rollout, token_logprobs

STATE = "checkpoint.pt"
STATE_KEYS = ("policy", "opt", "state", "anchor")  # what save_state writes
RANK_SEED = 7_919_993  # torch seed offset per torchrun rank (rank 0: the one-process seeds)


@dataclass
class Models:
    """What one policy run trains and compares against; `net` is the policy as DDP / FSDP sees it."""

    policy: torch.nn.Module
    ref: torch.nn.Module  # π_ref: the initial policy, frozen
    anchor: torch.nn.Module | None  # BOND / J-BOND anchor (fixed, or EMA of the policy for J-BOND)
    net: torch.nn.Module
    opt: torch.optim.Optimizer


@dataclass
class Setup:
    """The run's fixed inputs, passed whole to the step functions."""

    cfg: object  # PolicyTrainConfig
    world: object
    rm: object  # RewardModel (the proxy)
    device: torch.device


def build_models(cfg, world, device) -> Models:
    ref = copy.deepcopy(world.policy).to(device).eval().requires_grad_(False)
    policy = world.policy.to(device)
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        policy = get_peft_model(policy, LoraConfig(r=cfg.lora_rank, lora_alpha=2 * cfg.lora_rank,
                                                   target_modules="all-linear", lora_dropout=0.0))
    policy = policy.eval()  # no dropout: sampling and the loss see the same policy
    anchor = copy.deepcopy(policy).requires_grad_(False) if cfg.method in ("bond", "jbond") else None
    net, ref, anchor = dist.wrap_policy(policy, ref, anchor, cfg.parallel, device)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
    return Models(policy, ref, anchor, net, opt)


# --- sampling and scoring -----------------------------------------------------------------
def sample(s: Setup, model, prompts: list[str], k: int, generator: torch.Generator | None = None) -> Rollout:
    """k samples of each prompt from `model` (prompt-major: prompt b's samples at b·k … b·k + k − 1),
    drawn from `generator` if given, else from torch's global generator; by the fast engine where
    fast_sampling allows it, else by transformers' generate."""
    texts = [s.world.render(p) for p in prompts for _ in range(k)]
    sp = s.cfg.sampling
    if fast_sampling(s, model):
        return fast_policy_rollout(model, s.world.tokenizer, texts, s.world.add_special_tokens, sp.max_new_tokens,
                                   sp.temperature, sp.top_p, generator)
    enc = encode_prompts(s.world.tokenizer, texts, s.world.add_special_tokens, s.device)
    with autocast(s.device, s.cfg.precision):
        return rollout(model, s.world.tokenizer, enc, sp.max_new_tokens, sp.temperature, sp.top_p, generator)


def fast_sampling(s: Setup, model) -> bool:
    """sampling.engine=fast (opt-in) draws rollouts with the fast engine's fp32 decode loop (1.4× generate at an
    evaluation's 24 × 4 rows on 2 cores, benchmarks/README.md) in one process, at fp32 precision, on a model
    whose logits it computes exactly (fast_engine_fits); LoRA, bf16 autocast and torchrun (FSDP needs every
    rank in generate's synced loop) keep generate."""
    return (s.cfg.sampling.engine == "fast" and s.cfg.precision == "fp32" and not s.cfg.lora
            and not dist.active() and fast_engine_fits(model))


def sample_both(s: Setup, jobs: list[tuple]) -> list[Rollout]:
    """Rollouts of several (model, prompts, k) jobs — BOND's anchor and policy samples — each from its own
    generator seeded from torch's global one (so a step's samples follow from its seed). With
    cfg.concurrent_sampling on a CPU in one process they run side by side in threads, each with half the
    intra-op threads: generation of a small model is latency-bound (a second generate call on 2 cores costs
    about as much as the first, benchmarks/README.md), and generate releases the GIL inside its matrix
    products. The samples are those the jobs would draw one after the other (tests/test_policy_sampling.py)."""
    seeds = torch.randint(0, 2**62, (len(jobs),)).tolist()
    gens = [torch.Generator(s.device).manual_seed(seed) for seed in seeds]
    threads = torch.get_num_threads()
    if not (s.cfg.concurrent_sampling and len(jobs) > 1 and s.device.type == "cpu" and threads > 1
            and not dist.active()):
        return [sample(s, model, prompts, k, g) for (model, prompts, k), g in zip(jobs, gens, strict=True)]
    from concurrent.futures import ThreadPoolExecutor

    def run(job, g):
        torch.set_num_threads(max(1, threads // len(jobs)))
        return sample(s, *job, g)

    try:
        with ThreadPoolExecutor(len(jobs)) as pool:
            return list(pool.map(run, jobs, gens))
    finally:
        torch.set_num_threads(threads)


def proxy_scores(s: Setup, prompts: list[str], k: int, ro: Rollout) -> torch.Tensor:
    flat = [p for p in prompts for _ in range(k)]
    return torch.as_tensor(s.rm.score(flat, ro.texts), dtype=torch.float32, device=s.device)


def logprobs(s: Setup, model, ro: Rollout, grad: bool = True) -> torch.Tensor:
    """(B, T) per-token log-probabilities of the rollout's completion under `model`."""
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()), autocast(s.device, s.cfg.precision):
        return token_logprobs(model, ro)


def sample_stats(s: Setup, prompts, k, ro: Rollout, logp, logp_ref) -> dict:
    """Logging only (never trained on): gold of this step's policy samples and their KL to π_ref."""
    gold = s.world.gold_scores([p for p in prompts for _ in range(k)], ro.texts)
    kl = kl_per_sequence(logp.detach(), logp_ref, ro.valid_mask)
    return {"reward/gold": float(gold.mean()), "kl/k1": kl["k1"].mean().item(), "kl/k3": kl["k3"].mean().item()}


# --- one batch's loss per method ----------------------------------------------------------
def rl_batch(s: Setup, m: Models, prompts: list[str], state: dict) -> tuple[torch.Tensor, dict]:
    """RLOO / REINFORCE: sample k per prompt, score with the proxy, shape, penalise, rl_loss."""
    cfg, k = s.cfg, s.cfg.samples_per_prompt
    ro = sample(s, m.policy, prompts, k)
    proxy = proxy_scores(s, prompts, k, ro)
    logp_ref = logprobs(s, m.ref, ro, grad=False)
    logp = logprobs(s, m.net, ro)
    reward = proxy
    if cfg.reward_shaping == "sigmoid_ref":
        n_ref = cfg.shaping_ref_samples
        ref = proxy_scores(s, prompts, n_ref, sample(s, m.ref, prompts, n_ref)).view(len(prompts), n_ref)
        reward = shaped_reward(proxy.view(len(prompts), k), ref).view(-1)
    if cfg.beta_kl > 0 and cfg.kl_estimator == "k1_reward":
        reward = kl_in_reward(reward, logp.detach(), logp_ref, ro.valid_mask, cfg.beta_kl)
    baseline = None
    if cfg.method == "reinforce":
        baseline = state["baseline"]
        batch_mean = dist.mean({"r": reward.mean().item()})["r"]  # over every rank's prompts
        state["baseline"] = cfg.baseline_decay * baseline + (1 - cfg.baseline_decay) * batch_mean
    k3_coef = cfg.beta_kl if cfg.kl_estimator == "k3_loss" else 0.0
    loss, stats = rl_loss(logp, logp_ref, reward, ro.valid_mask, k=k, baseline=baseline, k3_coef=k3_coef)
    return loss, stats | {"reward/proxy": proxy.mean().item()} | sample_stats(s, prompts, k, ro, logp, logp_ref)


def bond_batch(s: Setup, m: Models, prompts: list[str]) -> tuple[torch.Tensor, dict]:
    """BOND (fixed anchor, bond_n anchor samples, log p≤ reward) or J-BOND (2 anchor samples, r_J)."""
    cfg, k, B = s.cfg, s.cfg.samples_per_prompt, len(prompts)
    jbond = cfg.method == "jbond"
    n_anchor = 2 if jbond else cfg.bond_n
    beta = cfg.jeffreys_beta if (jbond or cfg.bond_divergence == "jeffreys") else float(cfg.bond_divergence == "backward")
    jobs = [(m.anchor, prompts, n_anchor)] + ([(m.policy, prompts, k)] if beta > 0 else [])
    ro_a, ro = (sample_both(s, jobs) + [None])[:2]
    anchor_scores = proxy_scores(s, prompts, n_anchor, ro_a).view(B, n_anchor)
    logp_best = best_mask = logp = logp_anchor = proxy = ro_best = None
    if beta < 1:  # forward KL(π_BoN‖π): the anchor's best-of-n sample of each prompt (first top score wins ties)
        best = torch.arange(B, device=s.device) * n_anchor + anchor_scores.argmax(dim=1)
        ro_best = Rollout(ro_a.input_ids[best], ro_a.attention_mask[best], ro_a.prompt_len, ro_a.valid_mask[best], [])
        best_mask = ro_best.valid_mask
    if beta > 0:  # backward KL(π‖π_BoN): the policy's own samples
        proxy = proxy_scores(s, prompts, k, ro)
        if not jbond or cfg.beta_kl > 0:  # r_J without γ never reads the anchor's log-probabilities
            logp_anchor = logprobs(s, m.anchor, ro, grad=False)
    # the policy's log-probabilities of the best anchor samples and of its own samples: one forward pass
    parts = [r for r in (ro_best, ro) if r is not None]
    logp_all = logprobs(s, m.net, stack_rollouts(parts, s.world.tokenizer.pad_token_id))
    logp_best, logp = (logp_all[: B, : best_mask.shape[1]] if beta < 1 else None,
                       logp_all[-len(ro.texts):, : ro.valid_mask.shape[1]] if beta > 0 else None)
    loss, stats = bond_loss(logp_best, best_mask, logp, logp_anchor, ro.valid_mask if ro else None, proxy,
                            anchor_scores, k=k, beta=beta, jbond=jbond, bond_n=cfg.bond_n, beta_kl=cfg.beta_kl)
    stats = {"reward/anchor_proxy": anchor_scores.mean().item()} | stats
    if beta > 0:  # BOND's fixed anchor is π_ref (the initial policy): its log-probabilities give the logged KL
        fixed = cfg.method == "bond" and logp_anchor is not None
        stats |= sample_stats(s, prompts, k, ro, logp, logp_anchor if fixed else logprobs(s, m.ref, ro, grad=False))
    return loss, stats


def stack_rollouts(parts: list[Rollout], pad_id: int | None) -> Rollout:
    """Rollouts with one prompt length as one batch, shorter completions right-padded (masked out)."""
    if len(parts) == 1:
        return parts[0]
    if len({r.prompt_len for r in parts}) > 1:
        raise ValueError("stack_rollouts needs rollouts of one prompt length (the same prompts, left-padded)")
    T = max(r.valid_mask.shape[1] for r in parts)
    ids, att, valid = [], [], []
    for r in parts:
        extra = T - r.valid_mask.shape[1]
        ids.append(torch.nn.functional.pad(r.input_ids, (0, extra), value=pad_id if pad_id is not None else 0))
        att.append(torch.nn.functional.pad(r.attention_mask, (0, extra), value=0))
        valid.append(torch.nn.functional.pad(r.valid_mask, (0, extra), value=False))
    return Rollout(torch.cat(ids), torch.cat(att), parts[0].prompt_len, torch.cat(valid), [])


def train_step(s: Setup, m: Models, prompts: list[str], state: dict) -> dict:
    """One update on the global batch `prompts`; under torchrun each rank takes prompts[rank::K] and
    DDP / FSDP average the gradients (equal shares: batch_prompts is a multiple of K)."""
    local = dist.my_slice(prompts)
    loss, stats = rl_batch(s, m, local, state) if s.cfg.method in ("rloo", "reinforce") else bond_batch(s, m, local)
    m.opt.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(m.net.parameters(), s.cfg.max_grad_norm)
    grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
    m.opt.step()
    if s.cfg.method == "jbond" and s.cfg.ema > 0:
        dist.reshard(m.anchor, m.policy)
        ema_update(m.anchor, m.policy, s.cfg.ema)
    return dist.mean(stats | {"loss/total": loss.item(), "policy/grad_norm": grad_norm.item()})


# --- measurement ----------------------------------------------------------------------------
@torch.no_grad()
def evaluate(s: Setup, m: Models, prompts: list[str], state: dict) -> dict:
    """Gold, proxy and KL(π‖π_ref) of eval_samples_per_prompt samples per prompt; gold and proxy normalised
    by cfg.norm (a shared reference pool) or else on the first evaluation, the initial policy (SPEC §5);
    under torchrun each rank measures its share."""
    k = s.cfg.eval_samples_per_prompt
    local = dist.my_slice(prompts)
    ro = sample(s, m.policy, local, k)
    flat = [p for p in local for _ in range(k)]
    # the policy's log-probabilities from its sampler where it kept them (the fast engine: one forward less)
    logp = ro.logprobs if ro.logprobs is not None else logprobs(s, m.policy, ro)
    kl = kl_per_sequence(logp, logprobs(s, m.ref, ro), ro.valid_mask)
    parts = dist.gather((s.world.gold_scores(flat, ro.texts), s.rm.member_scores(flat, ro.texts),
                         {name: v.cpu().numpy() for name, v in kl.items()}))
    gold = np.concatenate([g for g, _, _ in parts])
    members = np.concatenate([mem for _, mem, _ in parts], axis=1)
    kl = {name: np.concatenate([d[name] for _, _, d in parts]) for name in parts[0][2]}
    if state["norm"] is None:
        state["norm"] = (s.cfg.norm.model_dump(mode="json") if s.cfg.norm is not None else
                         {"gold": list(normalisation(gold)),
                          "proxy": list(normalisation(aggregate(members, s.rm.method, s.rm.lam)))})
    return eval_row(s.cfg, s.rm, gold, members, kl, state["norm"])


# --- resume -----------------------------------------------------------------------------------
def save_state(run: RunDir, m: Models, state: dict) -> None:
    """Resumable state (rank 0 writes; under FSDP not written: optimizer state is sharded)."""
    import io

    if not run.writer or dist.is_sharded(m.policy):
        return
    buf = io.BytesIO()
    torch.save({"policy": m.policy.state_dict(), "opt": m.opt.state_dict(), "state": state,
                "anchor": m.anchor.state_dict() if m.anchor is not None else None}, buf)
    atomic_write_bytes(run.file(STATE), buf.getvalue())


def restore_state(run: RunDir, m: Models, device) -> dict:
    data = load_state(run.file(STATE), map_location=device)
    m.policy.load_state_dict(data["policy"])
    if m.anchor is not None:
        m.anchor.load_state_dict(data["anchor"])
    m.opt.load_state_dict(data["opt"])
    return data["state"]


def drop_rows_from(run: RunDir, step: int) -> None:
    """Remove metrics/results rows written after the checkpoint at `step` (they are redone on resume)."""
    for name in (METRICS, RESULTS):
        if run.writer and run.file(name).is_file():
            write_jsonl(run.file(name), [r for r in read_jsonl(run.file(name)) if r.get("step", -1) < step])


def _open_run(cfg, out: Path, resume: bool, overwrite: bool) -> RunDir:
    if resume:
        return resume_run(out, cfg.model_dump(mode="json"), STATE, may_change=("steps", "keep_state"), model=type(cfg),
                          check_state=lambda f: load_state(f, keys=STATE_KEYS, mmap=True))
    return RunDir.create(out, cfg.model_dump(mode="json"), overwrite=overwrite)


def split_policy_prompts(cfg, world) -> tuple[list[str], list[str]]:
    """(eval prompts, train prompts): disjoint, by a seeded shuffle of the world's prompts."""
    need = cfg.eval_prompts + cfg.train_prompts
    if len(world.prompts) < need:
        raise GoodhartError(f"the world has {len(world.prompts)} prompts but eval_prompts + train_prompts = {need}")
    seed = cfg.seed if cfg.prompt_seed is None else cfg.prompt_seed
    order = np.random.default_rng(seed).permutation(len(world.prompts))
    return [world.prompts[i] for i in order[: cfg.eval_prompts]], [world.prompts[i] for i in order[cfg.eval_prompts : need]]


def check_processes(cfg) -> None:
    K = dist.world_size()
    if cfg.batch_prompts % K or cfg.eval_prompts < K:
        raise GoodhartError(f"under torchrun with {K} processes batch_prompts ({cfg.batch_prompts}) must be a multiple "
                            f"of {K} and eval_prompts ({cfg.eval_prompts}) at least {K}")
    if cfg.parallel == "fsdp" and K > 1 and cfg.lora:
        raise GoodhartError("parallel=fsdp with lora=true is not supported; LoRA already keeps the trained "
                            "weights small: use parallel=ddp")


def train_policy(cfg, out: str | Path, resume: bool = False, overwrite: bool = False,
                 prompts: tuple[list[str], list[str]] | None = None) -> Path:
    """Train the world's policy against cfg.reward_model into run directory `out`: metrics, results rows
    (one per evaluation), resumable checkpoints and the final policy. The report is the command's.
    `prompts`: (eval prompts, train prompts) to use instead of the seeded split of the world's prompts
    (`goodhart run`'s RL leg evaluates on its Best-of-n prompts)."""
    from goodhart.worlds import load_world

    if resume:
        require_run(out)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    rm = load_reward_model(cfg.reward_model).to(device)
    world = load_world(cfg)
    check_processes(cfg)
    eval_prompts, train_prompts = prompts or split_policy_prompts(cfg, world)
    run = _open_run(cfg, Path(out), resume, overwrite)
    s, m = Setup(cfg, world, rm, device), build_models(cfg, world, device)
    state = {"step": 0, "baseline": 0.0, "norm": None}
    if resume and run.file(STATE).is_file():
        if dist.is_sharded(m.policy):
            raise GoodhartError("--resume is not available under parallel=fsdp (no resumable state is written)")
        state = restore_state(run, m, device)
        drop_rows_from(run, state["step"])
        console.print(f"resuming {run.path} at step {state['step']}")
    common = row_common(cfg, world.name)

    def measure(step: int) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed * 1_000_003 + 500_000 + step + RANK_SEED * dist.rank())
            row = evaluate(s, m, eval_prompts, state)
        run.append_results([common | {"step": step} | row])

    start = state["step"]
    with progress_bar(cfg.steps - start, f"train policy ({cfg.method})") as advance:
        for step in range(start, cfg.steps):
            if step % cfg.eval_every == 0 and (step > 0 or cfg.eval_initial):
                measure(step)
            torch.manual_seed(cfg.seed * 1_000_003 + step + RANK_SEED * dist.rank())  # ranks sample apart
            rng = np.random.default_rng([cfg.seed, step])
            batch = [train_prompts[i] for i in rng.choice(len(train_prompts), size=cfg.batch_prompts, replace=False)]
            t = time.perf_counter()
            stats = train_step(s, m, batch, state)
            run.log_metrics(phase="policy", step=step, **stats, **{"time/step_s": time.perf_counter() - t})
            state["step"] = step + 1
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
                save_state(run, m, state)
            advance(info=f"proxy {stats.get('reward/proxy', float('nan')):.2f}")
    measure(cfg.steps)
    if cfg.keep_state:
        save_state(run, m, state)
    weights = dist.full_state_dict(m.policy)  # every rank joins the gather under FSDP
    save_checkpoint(run, "policy", m.policy, world.tokenizer, kind="policy", state_dict=weights, card={
        "method": cfg.method, "steps": cfg.steps, "KL penalty": cfg.beta_kl, "reward model": cfg.reward_model,
        "LoRA": cfg.lora, "processes": dist.world_size(), "parallel": cfg.parallel if dist.world_size() > 1 else None})
    if not cfg.keep_state and run.writer:  # after the policy: a kill in between leaves a finished run
        run.file(STATE).unlink(missing_ok=True)
    run.close()
    return run.path
