"""Same model, same distribution, on the real policy: ≥ 2,000 completions from two pool engines on the
same prompts, compared on the mean per-token log-probability under the fp32 policy, the length and the
gold score (Mann-Whitney and KS two-sample tests at the 1% level, standardised differences printed).

    python benchmarks/sampling_distribution.py [--world sentiment] [--a hf] [--b fast] [--prompts 16] [--k 125]

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
def mean_logprobs(model, tok, inputs: list[str], completions: list[str], add_special_tokens: bool) -> np.ndarray:
    """Mean log π(token) of each completion's tokens given its input, fp32, one sequence at a time."""
    out = []
    for text, completion in zip(inputs, completions, strict=True):
        head = tok(text, return_tensors="pt", add_special_tokens=add_special_tokens)["input_ids"]
        tail = tok(completion, return_tensors="pt", add_special_tokens=False)["input_ids"]
        if tail.shape[1] == 0:
            out.append(0.0)
            continue
        ids = torch.cat([head, tail], dim=1)
        logp = torch.log_softmax(model(input_ids=ids).logits[0, head.shape[1] - 1 : -1].float(), -1)
        out.append(float(logp.gather(-1, tail[0, :, None]).mean()))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    ap.add_argument("--a", default="hf", choices=["hf", "prefix", "fast"])
    ap.add_argument("--b", default="fast", choices=["hf", "prefix", "fast"])
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
    flat_t = [t for t in texts for _ in range(args.k)]
    measured = {}
    for engine, seed in ((args.a, 1), (args.b, 2)):
        t = time.perf_counter()
        comps = [c for row in sample_completions(model, tok, texts, args.k, max_new_tokens=args.tokens, seed=seed,
                                                 engine=engine, batch_size=128,
                                                 add_special_tokens=world.add_special_tokens) for c in row]
        seconds = time.perf_counter() - t
        measured[engine] = {
            "logprob": mean_logprobs(model, tok, flat_t, comps, world.add_special_tokens),
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
