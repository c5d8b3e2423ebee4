"""Same model, same distribution, on the real policy: ≥ 2,000 completions from two pool engines on the
same prompts, compared on the mean per-token log-probability under the fp32 policy, the length and the
gold score (Mann-Whitney and KS two-sample tests at the 1% level, standardised differences printed).

    python benchmarks/sampling_distribution.py [--world sentiment] [--a hf] [--b fast] [--prompts 16] [--k 125]
    python benchmarks/sampling_distribution.py --a fast --b fast-bf16 --k 128   # the bf16 body (issue 16)

fast-bf16 is the fast engine with a bf16 decoder body (attention on an fp32 KV cache, logits fp32), the
default of sampling.dtype auto where bf16 is native.

tests/test_sampling_engines.py runs the same check on the smoke world in the fast tier; this script is
its check on SmolLM2-135M (minutes: run it alone). The last line: `engines A vs B: same distribution`
or `… differ on <statistics>`.
"""

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402


@torch.no_grad()
def mean_logprobs(model, tok, prompt: str, completions: list[str], add_special_tokens: bool) -> np.ndarray:
    """Mean per-token log π(y_t | x, y_<t) of each completion of one prompt under the fp32 `model`: the
    prompt is run once and its KV cache shared by the completions (right-padded, scored together)."""
    from transformers import DynamicCache

    head = tok(prompt, return_tensors="pt", add_special_tokens=add_special_tokens)["input_ids"]
    tails = [tok(c, add_special_tokens=False)["input_ids"] for c in completions]
    T = max(1, max(len(t) for t in tails))
    ids = torch.full((len(tails), T), tok.pad_token_id or 0, dtype=torch.long)
    mask = torch.zeros(len(tails), T, dtype=torch.long)
    for i, t in enumerate(tails):
        ids[i, : len(t)], mask[i, : len(t)] = torch.tensor(t, dtype=torch.long), 1
    cache = DynamicCache()
    first = model(input_ids=head, past_key_values=cache, use_cache=True).logits[0, -1].float()
    cache.batch_select_indices(torch.zeros(len(tails), dtype=torch.long))
    P = head.shape[1]
    full_mask = torch.cat([torch.ones(len(tails), P, dtype=torch.long), mask], dim=1)
    pos = torch.arange(P, P + T)[None].expand(len(tails), T)
    logits = model(input_ids=ids, attention_mask=full_mask, position_ids=pos, past_key_values=cache).logits.float()
    logits = torch.cat([first.expand(len(tails), 1, -1), logits[:, :-1]], dim=1)
    lp = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).squeeze(-1) * mask
    return (lp.sum(1) / mask.sum(1).clamp(min=1)).numpy()


ENGINES = ["hf", "prefix", "fast", "fast-bf16"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    ap.add_argument("--a", default="hf", choices=ENGINES)
    ap.add_argument("--b", default="fast", choices=ENGINES)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--k", type=int, default=125)
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    from goodhart.config import load_run_config
    from goodhart.sampling.engines import sample_completions
    from goodhart.worlds import load_world

    world = load_world(load_run_config(world=args.world))
    model, tok = world.policy.eval(), world.tokenizer
    prompts = world.prompts[: args.prompts]
    texts = [world.render(p) for p in prompts]
    flat_p = [p for p in prompts for _ in range(args.k)]
    measured = {}
    for engine, seed in ((args.a, 1), (args.b, 2)):
        t = time.perf_counter()
        grid = sample_completions(model, tok, texts, args.k, max_new_tokens=args.tokens, seed=seed, batch_size=128,
                                  engine=engine.removesuffix("-bf16"), add_special_tokens=world.add_special_tokens,
                                  dtype=torch.bfloat16 if engine.endswith("-bf16") else torch.float32)
        comps = [c for row in grid for c in row]
        seconds = time.perf_counter() - t
        measured[engine] = {
            "logprob": np.concatenate([mean_logprobs(model, tok, x, row, world.add_special_tokens)
                                       for x, row in zip(texts, grid, strict=True)]),
            "length": np.array([len(tok(c, add_special_tokens=False)["input_ids"]) for c in comps]),
            "gold": np.asarray(world.gold_scores(flat_p, comps), dtype=float),
        }
        print(f"{engine}: {len(comps)} completions in {seconds:.0f} s")
    differ = []
    for key in ("logprob", "length", "gold"):
        a, b = measured[args.a][key], measured[args.b][key]
        p = stats.mannwhitneyu(a, b).pvalue
        ks = stats.ks_2samp(a, b).pvalue
        effect = (a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2 + 1e-12)
        print(f"{key}: {args.a} {a.mean():.4f} vs {args.b} {b.mean():.4f}, standardised difference {effect:+.3f}, "
              f"Mann-Whitney p {p:.3f}, KS p {ks:.3f}")
        if p <= 0.01 or ks <= 0.01:
            differ.append(key)
    print(f"engines {args.a} vs {args.b}: " + (f"differ on {', '.join(differ)}" if differ else "same distribution"))


if __name__ == "__main__":
    main()
