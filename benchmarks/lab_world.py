"""The lab world's speed targets, measured side by side in one run (issue: Goodhart's fall in minutes).

    python benchmarks/lab_world.py [--pool-prompts 16] [--pool-k 16384] [--skip-smollm2] [--rl-steps 20]

1. sampling: the fast engine on the lab policy (4 prompts × 1,024 samples × 24 tokens) against the same engine
   on SmolLM2-135M (2 prompts × 128 × 32, its dtype as sampling.dtype auto picks), tokens/s of each and their
   ratio; the lab engine's share of its roofline (a GEMM probe at its decode shape, (rows, hidden) @
   (hidden, 4·hidden), fp32; work = 2 × parameters FLOPs per token, prompts counted once); and the decode
   steps' attention, hand-written (cascade.decode_attention) against torch's SDPA, interleaved, same samples;
2. pool: --pool-prompts × --pool-k samples drawn and scored by gold and by the three proxies of `goodhart run`
   (the default proxy size; the weights do not change the cost), seconds of each part;
3. RL: RLOO steps at 16 prompts × 4 samples (64 rollouts) against a proxy of the default size, seconds a step.
"""

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sampling import gemm_flops  # noqa: E402


def tokens_per_s(world, texts, k, tokens, batch, dtype) -> tuple[float, int, float]:
    from goodhart.sampling.engines import sample_completions

    tok = world.tokenizer
    t = time.perf_counter()
    out = sample_completions(world.policy, tok, texts, k, max_new_tokens=tokens, batch_size=batch, seed=0,
                             add_special_tokens=world.add_special_tokens, engine="fast", dtype=dtype)
    seconds = time.perf_counter() - t
    count = sum(len(tok(c, add_special_tokens=False)["input_ids"]) for row in out for c in row)
    return count / seconds, count, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pool-prompts", type=int, default=16)
    ap.add_argument("--pool-k", type=int, default=16384)
    ap.add_argument("--rl-steps", type=int, default=20)
    ap.add_argument("--skip-smollm2", action="store_true")
    ap.add_argument("--world", default="lab", choices=["lab", "lab-tiny"], help="lab-tiny: a dry run in seconds")
    args = ap.parse_args()
    from goodhart.config import SamplingConfig, load_run_config
    from goodhart.device import sampling_dtype
    from goodhart.worlds import load_world

    lab = load_world(load_run_config(world=args.world))
    cpu = torch.device("cpu")
    texts = [lab.render(p) for p in lab.prompts[:4]]
    tokens_per_s(lab, texts[:1], 64, 24, 1024, torch.float32)  # warm-up
    rate, count, seconds = tokens_per_s(lab, texts, 1024, 24, 1024, torch.float32)
    params = sum(p.numel() for p in lab.policy.parameters())
    prompt_tokens = sum(len(lab.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    flops = gemm_flops(1024, lab.policy.config.hidden_size, cpu)
    roof = count / (2 * params * (count + prompt_tokens) / flops)
    print(f"lab policy: {params / 1e6:.2f}M parameters; fast engine {rate:,.0f} tokens/s ({count} tokens in "
          f"{seconds:.1f} s); GEMM probe {flops / 1e9:.0f} GFLOP/s fp32 → roofline {roof:,.0f} tokens/s: "
          f"{100 * rate / roof:.0f}% of roofline")
    attention_ab(lab, texts)
    if not args.skip_smollm2:
        smol = load_world(load_run_config(world="sentiment"))
        dtype = sampling_dtype("auto", cpu)
        stexts = [smol.render(p) for p in smol.prompts[:2]]
        tokens_per_s(smol, stexts[:1], 16, 8, 128, dtype)
        srate, scount, ssec = tokens_per_s(smol, stexts, 128, 32, 128, dtype)
        print(f"SmolLM2-135M fast engine ({str(dtype).removeprefix('torch.')}): {srate:,.0f} tokens/s ({scount} "
              f"tokens in {ssec:.1f} s); lab / SmolLM2 = {rate / srate:.1f}×")
        del smol

    from goodhart.scoring import score_pairs

    cfg = load_run_config(world=args.world)
    prompts = lab.prompts[-args.pool_prompts:]
    t = time.perf_counter()
    sampling = SamplingConfig(**(cfg.sampling.model_dump()))
    from goodhart.sampling.engines import sample_completions

    comps = sample_completions(lab.policy, lab.tokenizer, [lab.render(p) for p in prompts], args.pool_k,
                               max_new_tokens=sampling.max_new_tokens, batch_size=sampling.batch_size, seed=1,
                               engine="fast", description="pool")
    t_sample = time.perf_counter() - t
    flat_p = [p for p in prompts for _ in range(args.pool_k)]
    flat_c = [c for row in comps for c in row]
    t = time.perf_counter()
    gold = lab.gold(list(zip(flat_p, flat_c, strict=True)))
    t_gold = time.perf_counter() - t
    t = time.perf_counter()
    for seed in range(3):
        model, tok = lab.make_proxy(seed)
        score_pairs(model, tok, flat_p, flat_c, batch_size=256, max_length=cfg.rm.max_length)
    t_proxy = time.perf_counter() - t
    print(f"pool {args.pool_prompts} × {args.pool_k:,}: sampled in {t_sample:.0f} s, gold {t_gold:.0f} s, 3 proxies "
          f"{t_proxy:.0f} s: {(t_sample + t_gold + t_proxy) / 60:.1f} min in all (gold mean {np.mean(gold):+.3f})")

    rl_step(lab, args.rl_steps)


def attention_ab(world, texts, rounds: int = 2) -> None:
    """Decode-step attention: cascade.decode_attention (the shipped path on a CPU) against transformers' SDPA,
    interleaved rounds of the same 4 × 1,024 pool draw (same seed), median seconds each; the samples must match."""
    import goodhart.sampling.cascade as cascade

    shipped = cascade.fast_attention

    def sdpa_only(module, query, key, value, attention_mask, *, scaling=None, shared_prefix=None, **kwargs):
        if shared_prefix is not None:
            return shipped(module, query, key, value, attention_mask, scaling=scaling, shared_prefix=shared_prefix)
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        out, weights = sdpa_attention_forward(module, query.to(key.dtype), key, value, attention_mask,
                                              scaling=scaling, **kwargs)
        return out.to(query.dtype), weights

    times, samples = {"hand-written": [], "sdpa": []}, {}
    try:
        for _ in range(rounds):
            for name, fn in (("hand-written", shipped), ("sdpa", sdpa_only)):
                cascade.fast_attention = fn
                cascade.register_fast_attention()
                _, _, sec = tokens_per_s(world, texts, 1024, 24, 1024, torch.float32)
                times[name].append(sec)
                samples[name] = world_samples(world, texts[:1])
    finally:
        cascade.fast_attention = shipped
        cascade.register_fast_attention()
    a, b = (float(np.median(times[k])) for k in ("hand-written", "sdpa"))
    same = samples["hand-written"] == samples["sdpa"]
    print(f"decode attention: hand-written {a:.2f} s vs SDPA {b:.2f} s per 4 × 1,024 pool: {b / a:.2f}× "
          f"(median of {rounds}); same samples: {same}")


def world_samples(world, texts) -> list:
    from goodhart.sampling.engines import sample_completions

    return sample_completions(world.policy, world.tokenizer, texts, 64, max_new_tokens=24, batch_size=1024, seed=3,
                              add_special_tokens=world.add_special_tokens, engine="fast", dtype=torch.float32)


def rl_step(world, steps: int) -> None:
    """Seconds per RLOO step at 16 prompts × 4 samples through `goodhart policy train` (its metrics' step times)."""
    import json
    import tempfile
    from pathlib import Path

    from goodhart.config import PolicyTrainConfig
    from goodhart.config.load import load_config
    from goodhart.policy.train import train_policy

    with tempfile.TemporaryDirectory() as tmp:
        model, tok = world.make_proxy(0)
        model.save_pretrained(Path(tmp) / "rm")
        tok.save_pretrained(Path(tmp) / "rm")
        cfg = load_config(PolicyTrainConfig, world=world.name, overrides=[
            f"reward_model={Path(tmp) / 'rm'}", "method=rloo", f"steps={steps}", f"eval_every={steps}",
            f"checkpoint_every={steps}"])
        t = time.perf_counter()
        train_policy(cfg, Path(tmp) / "run")
        total = time.perf_counter() - t
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
        times = [r["time/step_s"] for r in rows if "time/step_s" in r]
        print(f"RLOO on the lab world, {cfg.batch_prompts} × {cfg.samples_per_prompt} rollouts: median step "
              f"{np.median(times):.2f} s over {len(times)} steps ({total:.0f} s with evaluations); 1,000 steps ≈ "
              f"{1000 * np.median(times) / 60:.1f} min")


if __name__ == "__main__":
    main()
