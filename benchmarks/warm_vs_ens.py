"""Scoring throughput: one WARM model vs an ENS prediction ensemble of M = 5 members, same texts.

    python benchmarks/warm_vs_ens.py [--texts 512] [--world sentiment]

Members are copies of the world's proxy backbone with perturbed weights (throughput does not
depend on training). Prints texts/s of each and the ratio WARM / ENS (target ≥ 4×).
"""

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    args = ap.parse_args()
    from goodhart import aggregate, weight_average
    from goodhart.scoring import score_pairs
    from goodhart.worlds import proxy_factory
    from goodhart.worlds.sentiment import movie_prompts

    make = proxy_factory(args.world, None)
    members = []
    for _ in range(args.members):
        model, tok = make(0)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1e-3 * torch.randn_like(p))
        members.append(model.eval())
    prompts = movie_prompts()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(prompts[i % len(prompts)].split(), size=24)) for i in range(args.texts)]
    ctx = [prompts[i % len(prompts)] for i in range(args.texts)]
    warm = weight_average(members)
    score_pairs(warm, tok, ctx[:16], texts[:16])  # warm-up
    t = time.perf_counter()
    score_pairs(warm, tok, ctx, texts)
    warm_rate = args.texts / (time.perf_counter() - t)
    t = time.perf_counter()
    aggregate(np.stack([score_pairs(m, tok, ctx, texts) for m in members]), "mean")
    ens_rate = args.texts / (time.perf_counter() - t)
    print(f"{args.texts} texts: WARM {warm_rate:.0f} texts/s, ENS(M={args.members}) {ens_rate:.0f} texts/s, "
          f"ratio {warm_rate / ens_rate:.2f}x")


if __name__ == "__main__":
    main()
