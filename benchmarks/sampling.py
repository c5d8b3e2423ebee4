"""Sampling throughput: goodhart's batched sampler (sampling.rollout: left padding, one generate call per
batch, KV cache) vs one-prompt-at-a-time `generate`, the same policy, prompts, sampling settings and
number of completions; both count the completion tokens they produced.

    python benchmarks/sampling.py [--world sentiment] [--prompts 16] [--k 4] [--tokens 32]

Prints tokens/s of each and the ratio (target ≥ 5×).
"""

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    from transformers import GenerationConfig

    from goodhart.config import load_run_config
    from goodhart.sampling.rollout import completion_mask, encode_prompts, rollout
    from goodhart.worlds import load_world

    world = load_world(load_run_config(world=args.world))
    model, tok = world.policy.eval(), world.tokenizer
    texts = [world.render(p) for p in world.prompts[: args.prompts]]
    flat = [t for t in texts for _ in range(args.k)]

    torch.manual_seed(0)
    t = time.perf_counter()
    batched = 0
    for s in range(0, len(flat), args.batch_size):
        ro = rollout(model, tok, encode_prompts(tok, flat[s:s + args.batch_size], world.add_special_tokens, "cpu"),
                     args.tokens)
        batched += int(ro.valid_mask.sum())
    t_batched = time.perf_counter() - t

    # the reference: what a straightforward loop does — one generate call per completion
    gen = GenerationConfig(do_sample=True, top_k=0, max_new_tokens=args.tokens, pad_token_id=tok.pad_token_id,
                           eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    t = time.perf_counter()
    single = 0
    with torch.no_grad():
        for text in flat:
            enc = tok(text, return_tensors="pt", add_special_tokens=world.add_special_tokens)
            comp = model.generate(**enc, generation_config=gen)[:, enc["input_ids"].shape[1]:]
            single += int(completion_mask(comp, tok.eos_token_id, tok.pad_token_id).sum())
    t_single = time.perf_counter() - t

    rate_b, rate_s = batched / t_batched, single / t_single
    print(f"{args.world}: {len(flat)} completions of ≤ {args.tokens} tokens, threads {torch.get_num_threads()}")
    print(f"batched sampler  {batched:6d} tokens in {t_batched:6.1f} s = {rate_b:7.1f} tokens/s")
    print(f"one at a time    {single:6d} tokens in {t_single:6.1f} s = {rate_s:7.1f} tokens/s")
    print(f"ratio {rate_b / rate_s:.1f}× (target ≥ 5×)")


if __name__ == "__main__":
    main()
