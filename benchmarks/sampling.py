"""Sampling throughput of the Best-of-n pool engines, side by side in one run, against a roofline.

    python benchmarks/sampling.py [--world sentiment] [--prompts 2] [--k 128] [--tokens 32]

hf: goodhart's batched sampler (left padding, one generate call per batch of --k, KV cache);
prefix: the same with each prompt computed once and its KV cache shared by its k samples;
fast: the hand-written decode loop (prompts once, finished rows leave the batch, inverse-CDF sampling),
fp32; and fast-bf16 (decoder body cast to bf16 once, attention on an fp32 KV cache, logits fp32) where bf16
is native (sampling.dtype auto picks it) or with --bf16; the fast engines attend to each prompt's one KV
copy together (shared-prompt attention), and `<default>-copied` is the default one with the prompt's cache
copied to every row instead (what it did before). All draw
prompts × k completions of up to --tokens tokens and count the completion tokens they produced.
Roofline: a GEMM probe at decode shapes ((k, hidden) @ (hidden, 4·hidden)) gives FLOP/s, fp32 and
bf16; the work is 2 × parameters FLOPs per generated token plus per prompt token counted once per
prompt. The last line: `engine fast-<dtype>: <R>× the hf sampler, <F>% of roofline` for the dtype that
sampling.dtype auto resolves to here (and the roofline of that dtype; both rooflines are printed above it).
"""

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402


def gemm_flops(k: int, hidden: int, device, seconds: float = 3.0, dtype=torch.float32) -> float:
    """FLOP/s of (k, hidden) @ (hidden, 4·hidden) products in `dtype`, the decode-step shape of an MLP."""
    a = torch.randn(k, hidden, device=device, dtype=dtype)
    b = torch.randn(hidden, 4 * hidden, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(5):
        a @ b
    sync()
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        a @ b
        n += 1
    sync()
    return 2 * k * hidden * 4 * hidden * n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--k", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--bf16", action="store_true", help="also time the fast engine with a bf16 decoder body where "
                                                         "bf16 is not native")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per engine (median reported)")
    args = ap.parse_args()
    from goodhart.config import load_run_config
    from goodhart.device import resolve_device, sampling_dtype
    from goodhart.sampling.engines import sample_completions
    from goodhart.worlds import load_world

    world = load_world(load_run_config(world=args.world))
    device = resolve_device("auto")  # the GPU where there is one (benchmarks/gpu_check.sh)
    model, tok = world.policy.to(device).eval(), world.tokenizer
    texts = [world.render(p) for p in world.prompts[: args.prompts]]

    engines = {"hf": ("hf", torch.float32), "prefix": ("prefix", torch.float32), "fast": ("fast", torch.float32)}
    default = "fast-bf16" if sampling_dtype("auto", device) == torch.bfloat16 else "fast"
    if args.bf16 or default == "fast-bf16":
        engines["fast-bf16"] = ("fast", torch.bfloat16)
    engines[f"{default}-copied"] = (engines[default][0], engines[default][1], False)  # no shared-prompt attention

    def run(name: str) -> tuple[float, int]:
        engine, dtype, *cascade = engines[name]
        t = time.perf_counter()
        out = sample_completions(model, tok, texts, args.k, max_new_tokens=args.tokens, batch_size=args.k, seed=0,
                                 add_special_tokens=world.add_special_tokens, engine=engine, dtype=dtype,
                                 cascade=cascade[0] if cascade else None)
        seconds = time.perf_counter() - t
        return seconds, sum(len(tok(c, add_special_tokens=False)["input_ids"]) for row in out for c in row)

    run("fast")  # warm-up (thread pool, allocator)
    times = {name: [] for name in engines}
    counts = {name: 0 for name in engines}
    for _ in range(args.rounds):
        for name in times:
            seconds, counts[name] = run(name)
            times[name].append(seconds)
    rate = {name: counts[name] / sorted(ts)[len(ts) // 2] for name, ts in times.items()}
    params = sum(p.numel() for p in model.parameters())
    prompt_tokens = sum(len(tok(t, add_special_tokens=world.add_special_tokens)["input_ids"]) for t in texts)
    flops = gemm_flops(args.k, model.config.hidden_size, device)
    flops16 = gemm_flops(args.k, model.config.hidden_size, device, dtype=torch.bfloat16)

    def roofline(name: str, f: float) -> float:  # tokens/s if every FLOP ran at the probe's rate
        return counts[name] / (2 * params * (counts[name] + prompt_tokens) / f)

    print(f"world {args.world}: {args.prompts} prompts × {args.k} samples × ≤ {args.tokens} tokens, "
          f"{device}, {torch.get_num_threads()} threads, {params / 1e6:.0f}M parameters, {prompt_tokens} prompt tokens")
    print(f"GEMM probe at decode shape: {flops / 1e9:.0f} GFLOP/s fp32, {flops16 / 1e9:.0f} GFLOP/s bf16 → roofline "
          f"{roofline('hf', flops):.0f} tokens/s fp32, {roofline('hf', flops16):.0f} bf16 (at hf's completion lengths)")
    for name, r in rate.items():
        print(f"{name:16s} {r:7.1f} tokens/s ({counts[name]} tokens; {100 * r / roofline(name, flops):.0f}% of the fp32 "
              f"roofline, {100 * r / roofline(name, flops16):.0f}% of bf16)  runs {[round(t, 1) for t in times[name]]} s")
    top = flops16 if default == "fast-bf16" else flops
    print(f"engine {default if default != 'fast' else 'fast-fp32'}: {rate[default] / rate['hf']:.2f}× the hf sampler, "
          f"{100 * rate[default] / roofline(default, top):.0f}% of roofline ({'bf16' if top is flops16 else 'fp32'})")


if __name__ == "__main__":
    main()
