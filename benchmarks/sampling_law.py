"""Does the bf16 fast engine sample the fp32 policy's law on the real model? (issue 16)

    python benchmarks/sampling_law.py [--world sentiment] [--prompts 16] [--k 128] [--tokens 32]

The fast engine with an fp32 decoder body and with a bf16 one (attention on an fp32 KV cache, logits fp32)
each draw prompts × k completions (≥ 2,000) on the same prompts with independent seeds. Compared with
two-sample tests at the 1% level (Mann–Whitney and Kolmogorov–Smirnov) and standardised differences:
the mean per-token log-probability of each completion under the fp32 policy, its length in tokens and its
gold score. tests/test_sampling_engines.py runs the same check on the smoke world's tiny model in every
test run (hf vs prefix vs fast vs fast-bf16); this is the check on SmolLM2-135M, which is too slow for the
test tiers (about 10 min on 2 CPU cores). The last line: `bf16 law: same` or `bf16 law: shifted (...)`.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--k", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    from goodhart.config import load_run_config
    from goodhart.sampling.engines import sample_completions
    from goodhart.worlds import load_world

    world = load_world(load_run_config(world=args.world))
    model, tok = world.policy.eval(), world.tokenizer
    prompts = world.prompts[: args.prompts]
    texts = [world.render(p) for p in prompts]
    out = {}
    for name, dtype, seed in (("fp32", torch.float32, 1), ("bf16", torch.bfloat16, 2)):
        t = time.perf_counter()
        comps = sample_completions(model, tok, texts, args.k, max_new_tokens=args.tokens, batch_size=128, seed=seed,
                                   add_special_tokens=world.add_special_tokens, engine="fast", dtype=dtype)
        drawn = time.perf_counter() - t
        flat_p = [p for p in prompts for _ in range(args.k)]
        flat_c = [c for row in comps for c in row]
        out[name] = {
            "logprob": np.concatenate([mean_logprobs(model, tok, x, row, world.add_special_tokens)
                                       for x, row in zip(texts, comps, strict=True)]),
            "length": np.array([len(tok(c, add_special_tokens=False)["input_ids"]) for c in flat_c]),
            "gold": np.asarray(world.gold_scores(flat_p, flat_c), dtype=float),
        }
        print(f"{name}: {len(flat_c)} completions drawn in {drawn:.0f} s, scored in {time.perf_counter() - t - drawn:.0f} s")
    shifted = []
    for key in ("logprob", "length", "gold"):
        a, b = out["fp32"][key], out["bf16"][key]
        mw, ks = stats.mannwhitneyu(a, b).pvalue, stats.ks_2samp(a, b).pvalue
        effect = (b.mean() - a.mean()) / np.sqrt((a.var() + b.var()) / 2 + 1e-12)
        print(f"{key:8s} fp32 {a.mean():+.4f}  bf16 {b.mean():+.4f}  standardised difference {effect:+.3f}  "
              f"Mann-Whitney p {mw:.3f}  KS p {ks:.3f}")
        if min(mw, ks) <= 0.01:
            shifted.append(f"{key} p {min(mw, ks):.3g}")
    print("bf16 law: " + ("same (every test keeps equality at the 1% level)" if not shifted
                          else f"shifted ({', '.join(shifted)})"))


if __name__ == "__main__":
    main()
