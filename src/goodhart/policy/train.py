"""`goodhart policy train`: RLOO / REINFORCE (SPEC §8) and BOND / J-BOND (SPEC §9) against a proxy RM.

One loop, CleanRL-style: sample → score with the proxy → loss → step (→ EMA anchor), with gold,
proxy and KL(π‖π_ref) measured on held-out prompts every `eval_every` steps. Written by hand: trl
1.16 has no PPO/BOND trainer, and its RLOO trainer cannot score decoded text with a proxy RM that
uses another tokenizer (nor an ensemble). Each step reseeds torch from (seed, step), so a resumed
run samples exactly what an uninterrupted one would.
"""

import copy
import time
from pathlib import Path

import numpy as np
import torch

from goodhart import dist
from goodhart.device import autocast, resolve_device, seed_everything
from goodhart.errors import GoodhartError
from goodhart.policy.bond import ema_update, jbond_reward, jeffreys, log_p_le
from goodhart.policy.kl import k3_loss, kl_in_reward, kl_per_sequence, mean_stderr
from goodhart.policy.losses import nll_loss, pg_loss, rloo_advantages, shaped_reward
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
    save_checkpoint,
    write_jsonl,
)
from goodhart.sampling.rollout import Rollout, encode_prompts, rollout, token_logprobs

STATE = "checkpoint.pt"
RANK_SEED = 7_919_993  # torch seed offset per torchrun rank (rank 0: the one-process seeds)


class Trainer:
    """Holds the models and the per-step state; `step()` is one update, `evaluate()` one measurement."""

    def __init__(self, cfg, world, rm, device):
        self.cfg, self.world, self.rm, self.device = cfg, world, rm, device
        self.tok = world.tokenizer
        self.ref = copy.deepcopy(world.policy).to(device).eval().requires_grad_(False)
        policy = world.policy.to(device)
        if cfg.lora:
            from peft import LoraConfig, get_peft_model

            policy = get_peft_model(policy, LoraConfig(r=cfg.lora_rank, lora_alpha=2 * cfg.lora_rank,
                                                       target_modules="all-linear", lora_dropout=0.0))
        self.policy = policy.eval()  # no dropout: sampling and the loss see the same policy
        self.anchor = (copy.deepcopy(self.policy).requires_grad_(False)
                       if cfg.method in ("bond", "jbond") else None)
        # under torchrun: gradients through `net` (DDP or FSDP); sampling and frozen models use the modules
        self.net = dist.wrap(self.policy, cfg.parallel, device)
        if dist.is_sharded(self.policy):  # FSDP: shard the frozen copies the same way (same collectives)
            self.ref = dist.wrap(self.ref, "fsdp", device)
            if self.anchor is not None:
                self.anchor = dist.wrap(self.anchor, "fsdp", device)
        self.opt = torch.optim.AdamW([p for p in self.net.parameters() if p.requires_grad], lr=cfg.lr)
        self.state = {"step": 0, "baseline": 0.0, "norm": None}

    # --- sampling and scoring -------------------------------------------------------------
    def sample(self, model, prompts: list[str], k: int) -> Rollout:
        enc = encode_prompts(self.tok, [self.world.render(p) for p in prompts for _ in range(k)],
                             self.world.add_special_tokens, self.device)
        s = self.cfg.sampling
        with autocast(self.device, self.cfg.precision):
            return rollout(model, self.tok, enc, s.max_new_tokens, s.temperature, s.top_p)

    def proxy(self, prompts: list[str], k: int, ro: Rollout) -> torch.Tensor:
        flat = [p for p in prompts for _ in range(k)]
        return torch.as_tensor(self.rm.score(flat, ro.texts), dtype=torch.float32, device=self.device)

    def logps(self, ro: Rollout, other) -> tuple[torch.Tensor, torch.Tensor]:
        """(log π with grad, log π_other without grad), each (B, T)."""
        with torch.no_grad():
            other_logp = self.logprobs(other, ro)
        return self.logprobs(self.net, ro), other_logp

    def logprobs(self, model, ro: Rollout) -> torch.Tensor:
        with autocast(self.device, self.cfg.precision):
            return token_logprobs(model, ro)

    def sample_stats(self, prompts, k, ro: Rollout, logp, logp_ref=None) -> dict:
        """Logging only (never trained on): gold of this step's policy samples and their KL to π_ref."""
        if logp_ref is None:
            with torch.no_grad():
                logp_ref = self.logprobs(self.ref, ro)
        gold = self.world.gold_scores([p for p in prompts for _ in range(k)], ro.texts)
        kl = kl_per_sequence(logp.detach(), logp_ref, ro.valid_mask)
        return {"reward/gold": float(gold.mean()), "kl/k1": kl["k1"].mean().item(), "kl/k3": kl["k3"].mean().item()}

    # --- one update per method ------------------------------------------------------------
    def rl_loss(self, prompts):
        cfg, k = self.cfg, self.cfg.samples_per_prompt
        ro = self.sample(self.policy, prompts, k)
        proxy = self.proxy(prompts, k, ro)
        logp, logp_ref = self.logps(ro, self.ref)
        reward = proxy
        if cfg.reward_shaping == "sigmoid_ref":
            m = cfg.shaping_ref_samples
            ref = self.proxy(prompts, m, self.sample(self.ref, prompts, m)).view(len(prompts), m)
            reward = shaped_reward(proxy.view(len(prompts), k), ref).view(-1)
        if cfg.beta_kl > 0 and cfg.kl_estimator == "k1_reward":
            reward = kl_in_reward(reward, logp.detach(), logp_ref, ro.valid_mask, cfg.beta_kl)
        if cfg.method == "rloo":
            adv = rloo_advantages(reward.view(len(prompts), k)).view(-1)
        else:
            adv = reward - self.state["baseline"]
            batch_mean = dist.mean({"r": reward.mean().item()})["r"]  # over every rank's prompts
            self.state["baseline"] = cfg.baseline_decay * self.state["baseline"] + (1 - cfg.baseline_decay) * batch_mean
        loss, stats = pg_loss(logp, ro.valid_mask, adv)
        if cfg.beta_kl > 0 and cfg.kl_estimator == "k3_loss":
            loss = loss + cfg.beta_kl * k3_loss(logp, logp_ref, ro.valid_mask)
        return loss, stats | {"reward/proxy": proxy.mean().item()} | self.sample_stats(prompts, k, ro, logp, logp_ref)

    def bond_loss(self, prompts):
        """BOND (fixed anchor, N anchor samples, log p≤ reward) or J-BOND (2 anchor samples, r_J, EMA anchor)."""
        cfg, k, B = self.cfg, self.cfg.samples_per_prompt, len(prompts)
        jbond = cfg.method == "jbond"
        n_anchor = 2 if jbond else cfg.bond_n
        beta = cfg.jeffreys_beta if (jbond or cfg.bond_divergence == "jeffreys") else float(cfg.bond_divergence == "backward")
        ro_a = self.sample(self.anchor, prompts, n_anchor)
        anchor_scores = self.proxy(prompts, n_anchor, ro_a).view(B, n_anchor)
        stats, loss = {"reward/anchor_proxy": anchor_scores.mean().item()}, 0.0
        if beta < 1:  # forward KL(π_BoN‖π): likelihood of the anchor's best-of-n sample (first top score wins ties)
            best = torch.arange(B, device=self.device) * n_anchor + anchor_scores.argmax(dim=1)
            ro_best = Rollout(ro_a.input_ids[best], ro_a.attention_mask[best], ro_a.prompt_len, ro_a.valid_mask[best], [])
            fwd, s = nll_loss(self.logprobs(self.net, ro_best), ro_best.valid_mask)
            loss, stats = fwd, stats | {"loss/forward": s["loss/nll"]}
        if beta > 0:  # backward KL(π‖π_BoN): policy gradient on the policy's own samples
            ro = self.sample(self.policy, prompts, k)
            proxy = self.proxy(prompts, k, ro)
            logp, logp_anchor = self.logps(ro, self.anchor)
            rep = anchor_scores.repeat_interleave(k, dim=0)
            if jbond:
                reward = jbond_reward(proxy, rep)
                if cfg.beta_kl > 0:
                    reward = kl_in_reward(reward, logp.detach(), logp_anchor, ro.valid_mask, cfg.beta_kl)
            else:
                reward = kl_in_reward(log_p_le(proxy, rep), logp.detach(), logp_anchor, ro.valid_mask, 1.0 / (cfg.bond_n - 1))
            adv = rloo_advantages(reward.view(B, k)).view(-1) if k > 1 else reward - reward.mean()
            bwd, s = pg_loss(logp, ro.valid_mask, adv)
            loss = jeffreys(loss, bwd, beta) if beta < 1 else bwd
            stats |= {"loss/backward": s["loss/pg"], "reward/proxy": proxy.mean().item(),
                      "reward/bond": reward.mean().item()} | self.sample_stats(prompts, k, ro, logp)
        return loss, stats

    def step(self, prompts: list[str]) -> dict:
        """One update on the global batch `prompts`; under torchrun each rank takes prompts[rank::K] and
        DDP / FSDP average the gradients (equal shares: batch_prompts is a multiple of K)."""
        local = dist.my_slice(prompts)
        loss, stats = (self.rl_loss if self.cfg.method in ("rloo", "reinforce") else self.bond_loss)(local)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.max_grad_norm)
        grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
        self.opt.step()
        if self.cfg.method == "jbond" and self.cfg.ema > 0:
            dist.reshard(self.anchor, self.policy)
            ema_update(self.anchor, self.policy, self.cfg.ema)
        return dist.mean(stats | {"loss/total": loss.item(), "policy/grad_norm": grad_norm.item()})

    # --- measurement ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, prompts: list[str]) -> dict:
        k = self.cfg.eval_samples_per_prompt
        local = dist.my_slice(prompts)  # under torchrun each rank measures its share; all ranks see the whole
        ro = self.sample(self.policy, local, k)
        flat = [p for p in local for _ in range(k)]
        kl = kl_per_sequence(self.logprobs(self.policy, ro), self.logprobs(self.ref, ro), ro.valid_mask)
        parts = dist.gather((self.world.gold_scores(flat, ro.texts), self.rm.member_scores(flat, ro.texts),
                             {name: v.cpu().numpy() for name, v in kl.items()}))
        gold = np.concatenate([g for g, _, _ in parts])
        members = np.concatenate([m for _, m, _ in parts], axis=1)
        kl = {name: torch.as_tensor(np.concatenate([d[name] for _, _, d in parts])) for name in parts[0][2]}
        proxy = aggregate(members, self.rm.method, self.rm.lam)
        if self.state["norm"] is None:  # the first evaluation is of the initial policy (SPEC §5)
            self.state["norm"] = {"gold": list(normalisation(gold)), "proxy": list(normalisation(proxy))}
        (gs, gd), (ps, pd) = self.state["norm"]["gold"], self.state["norm"]["proxy"]
        g, p = (gold - gs) / gd, (proxy - ps) / pd
        k3, k3_se = mean_stderr(kl["k3"])
        return {"kl": k3, "kl_se": k3_se, "kl_k1": mean_stderr(kl["k1"])[0], "d": float(np.sqrt(max(k3, 0.0))),
                "gold": float(g.mean()), "gold_se": float(g.std() / np.sqrt(len(g))), "proxy": float(p.mean()),
                "proxy_se": float(p.std() / np.sqrt(len(p))), "gold_raw": float(gold.mean()),
                "proxy_raw": float(proxy.mean()),
                # member disagreement (ensemble proxies): a gold-free overoptimization signal
                "disagreement": float(members.var(axis=0).mean()) if len(members) > 1 else None}

    # --- resume ---------------------------------------------------------------------------
    def save(self, run: RunDir) -> None:
        """Resumable state (rank 0 writes; under FSDP not written: optimizer state is sharded)."""
        import io

        if not run.writer or dist.is_sharded(self.policy):
            return
        buf = io.BytesIO()
        torch.save({"policy": self.policy.state_dict(), "opt": self.opt.state_dict(), "state": self.state,
                    "anchor": self.anchor.state_dict() if self.anchor is not None else None}, buf)
        atomic_write_bytes(run.file(STATE), buf.getvalue())

    def load(self, run: RunDir) -> None:
        data = torch.load(run.file(STATE), map_location=self.device, weights_only=True)
        self.policy.load_state_dict(data["policy"])
        if self.anchor is not None:
            self.anchor.load_state_dict(data["anchor"])
        self.opt.load_state_dict(data["opt"])
        self.state = data["state"]


def drop_rows_from(run: RunDir, step: int) -> None:
    """Remove metrics/results rows written after the checkpoint at `step` (they are redone on resume)."""
    for name in (METRICS, RESULTS):
        if run.writer and run.file(name).is_file():
            write_jsonl(run.file(name), [r for r in read_jsonl(run.file(name)) if r.get("step", -1) < step])


def _open_run(cfg, out: Path, resume: bool, overwrite: bool) -> RunDir:
    run = RunDir(out)
    if resume and run.file(STATE).is_file():
        return RunDir.reopen(out, cfg.model_dump(mode="json"), may_change=("steps",), model=type(cfg))
    return RunDir.create(out, cfg.model_dump(mode="json"), overwrite=overwrite)


def train_policy(cfg, out: str | Path, resume: bool = False, overwrite: bool = False) -> Path:
    """Train the world's policy against cfg.reward_model; writes metrics, results rows, checkpoints, report."""
    from goodhart.report import build_report
    from goodhart.worlds import load_world

    seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    rm = load_reward_model(cfg.reward_model).to(device)
    world = load_world(cfg)
    need = cfg.eval_prompts + cfg.train_prompts
    K = dist.world_size()
    if cfg.batch_prompts % K or cfg.eval_prompts < K:
        raise GoodhartError(f"under torchrun with {K} processes batch_prompts ({cfg.batch_prompts}) must be a multiple "
                            f"of {K} and eval_prompts ({cfg.eval_prompts}) at least {K}")
    if cfg.parallel == "fsdp" and K > 1 and cfg.lora:
        raise GoodhartError("parallel=fsdp with lora=true is not supported; LoRA already keeps the trained "
                            "weights small: use parallel=ddp")
    if len(world.prompts) < need:
        raise GoodhartError(f"the world has {len(world.prompts)} prompts but eval_prompts + train_prompts = {need}")
    order = np.random.default_rng(cfg.seed).permutation(len(world.prompts))
    eval_prompts = [world.prompts[i] for i in order[: cfg.eval_prompts]]
    train_prompts = [world.prompts[i] for i in order[cfg.eval_prompts : need]]
    run = _open_run(cfg, Path(out), resume, overwrite)
    trainer = Trainer(cfg, world, rm, device)
    if resume and run.file(STATE).is_file():
        if dist.is_sharded(trainer.policy):
            raise GoodhartError("--resume is not available under parallel=fsdp (no resumable state is written)")
        trainer.load(run)
        drop_rows_from(run, trainer.state["step"])
        console.print(f"resuming {run.path} at step {trainer.state['step']}")
    common = {"study": "policy", "method": cfg.method, "reward_model": Path(cfg.reward_model).name, "world": world.name,
              "beta_kl": cfg.beta_kl, "seed": cfg.seed, "lora": cfg.lora}

    def measure(step: int) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed * 1_000_003 + 500_000 + step + RANK_SEED * dist.rank())
            row = trainer.evaluate(eval_prompts)
        run.append_results([common | {"step": step} | row])

    start = trainer.state["step"]
    with progress_bar(cfg.steps - start, f"train policy ({cfg.method})") as advance:
        for step in range(start, cfg.steps):
            if step % cfg.eval_every == 0:
                measure(step)
            torch.manual_seed(cfg.seed * 1_000_003 + step + RANK_SEED * dist.rank())  # ranks sample apart
            rng = np.random.default_rng([cfg.seed, step])
            batch = [train_prompts[i] for i in rng.choice(len(train_prompts), size=cfg.batch_prompts, replace=False)]
            t = time.perf_counter()
            stats = trainer.step(batch)
            run.log_metrics(phase="policy", step=step, **stats, **{"time/step_s": time.perf_counter() - t})
            trainer.state["step"] = step + 1
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
                trainer.save(run)
            advance(info=f"proxy {stats.get('reward/proxy', float('nan')):.2f}")
    measure(cfg.steps)
    trainer.save(run)
    weights = dist.full_state_dict(trainer.policy)  # every rank joins the gather under FSDP
    save_checkpoint(run, "policy", trainer.policy, world.tokenizer, kind="policy", state_dict=weights, card={
        "method": cfg.method, "steps": cfg.steps, "KL penalty": cfg.beta_kl, "reward model": cfg.reward_model,
        "LoRA": cfg.lora, "processes": K, "parallel": cfg.parallel if K > 1 else None})
    if run.writer:
        build_report(run.path)
    console.print(f"done: {run.path / 'report.html'}")
    return run.path
