"""Sampling throughput of the Best-of-n pool engines, side by side in one run, against a roofline.

    python benchmarks/sampling.py [--world sentiment] [--prompts 2] [--k 128] [--tokens 32]

hf: goodhart's batched sampler (left padding, one generate call per batch of --k, KV cache);
prefix: the same with each prompt computed once and its KV cache shared by its k samples. Both draw
prompts × k completions of up to --tokens tokens and count the completion tokens they produced.
Roofline: a GEMM probe at decode shapes ((k, hidden) @ (hidden, 4·hidden), fp32) gives FLOP/s; the
work is 2 × parameters FLOPs per generated token plus per prompt token counted once per prompt.
The last line: `engine prefix: <R>× the hf sampler, <F>% of roofline`.
"""

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402


def gemm_flops(k: int, hidden: int, device, seconds: float = 3.0) -> float:
    """FLOP/s of fp32 (k, hidden) @ (hidden, 4·hidden) products, the decode-step shape of an MLP."""
    a, b = torch.randn(k, hidden, device=device), torch.randn(hidden, 4 * hidden, device=device)
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
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per engine (median reported)")
    args = ap.parse_args()
    from goodhart.config import load_run_config
    from goodhart.device import resolve_device
    from goodhart.sampling.engines import sample_completions
    from goodhart.worlds import load_world

    world = load_world(load_run_config(world=args.world))
    device = resolve_device("auto")  # the GPU where there is one (benchmarks/gpu_check.sh)
    model, tok = world.policy.to(device).eval(), world.tokenizer
    texts = [world.render(p) for p in world.prompts[: args.prompts]]

    def run(shared: bool) -> tuple[float, int]:
        t = time.perf_counter()
        out = sample_completions(model, tok, texts, args.k, max_new_tokens=args.tokens, batch_size=args.k, seed=0,
                                 add_special_tokens=world.add_special_tokens, shared_prefix=shared)
        seconds = time.perf_counter() - t
        return seconds, sum(len(tok(c, add_special_tokens=False)["input_ids"]) for row in out for c in row)

    run(True)  # warm-up (thread pool, allocator)
    times = {"hf": [], "prefix": []}
    generated = 0
    for _ in range(args.rounds):
        for name in times:
            seconds, generated = run(name == "prefix")
            times[name].append(seconds)
    rate = {name: generated / sorted(ts)[len(ts) // 2] for name, ts in times.items()}
    params = sum(p.numel() for p in model.parameters())
    prompt_tokens = sum(len(tok(t, add_special_tokens=world.add_special_tokens)["input_ids"]) for t in texts)
    flops = gemm_flops(args.k, model.config.hidden_size, device)
    roofline = generated / (2 * params * (generated + prompt_tokens) / flops)
    print(f"world {args.world}: {args.prompts} prompts × {args.k} samples × ≤ {args.tokens} tokens, "
          f"{device}, {torch.get_num_threads()} threads, {params / 1e6:.0f}M parameters, {prompt_tokens} prompt tokens")
    print(f"GEMM probe at decode shape: {flops / 1e9:.0f} GFLOP/s fp32 → roofline {roofline:.0f} tokens/s")
    for name, r in rate.items():
        print(f"{name:7s} {r:7.1f} tokens/s  ({100 * r / roofline:.0f}% of roofline)  runs {[round(t, 1) for t in times[name]]} s")
    print(f"engine prefix: {rate['prefix'] / rate['hf']:.2f}× the hf sampler, {100 * rate['prefix'] / roofline:.0f}% of roofline")


if __name__ == "__main__":
    main()
