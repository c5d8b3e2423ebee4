"""Log-probability passes of a policy step: each distinct prompt computed once (token_logprobs with
share_prompts, the default) vs one forward over the whole rows, prompts included. The shapes of the
steps in policy_step.py: RLOO's 8 prompts × 2 samples, J-BOND's stacked 8 best anchor samples + 16 policy
samples; per shape the policy's forward + backward (what the gradient needs) and the frozen reference's
forward (the logged KL). Repeats interleaved (shared, full, shared, …) so machine noise hits both alike.

    python benchmarks/logprobs.py [--world sentiment] [--repeats 5] [--batch-prompts 8]

Prints the median seconds per pass, the speed-up, and the largest log-probability difference.
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
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-prompts", type=int, default=8)
    args = ap.parse_args()
    from goodhart.config import PolicyTrainConfig
    from goodhart.policy import train
    from goodhart.sampling.rollout import token_logprobs
    from goodhart.worlds import load_world

    cfg = PolicyTrainConfig(world=args.world, reward_model="-", method="jbond", device="cpu")
    world = load_world(cfg)
    setup = train.Setup(cfg, world, None, torch.device("cpu"))
    models = train.build_models(cfg, world, setup.device)
    prompts = world.prompts[: args.batch_prompts]
    torch.manual_seed(0)
    own = train.sample(setup, models.policy, prompts, 2)
    best = train.sample(setup, models.anchor, prompts, 1)
    shapes = {"rloo (8×2)": own, "jbond (8 + 8×2)": train.stack_rollouts([best, own], world.tokenizer.pad_token_id)}

    def grad_pass(ro, share):
        logp = token_logprobs(models.policy, ro, share_prompts=share)
        logp.sum().backward()
        models.policy.zero_grad(set_to_none=True)
        return logp.detach()

    def ref_pass(ro, share):
        with torch.no_grad():
            return token_logprobs(models.ref, ro, share_prompts=share)

    print(f"world {args.world}, {args.batch_prompts} prompts, completions ≤ {own.valid_mask.shape[1]} tokens, "
          f"prompt {own.prompt_len} tokens (left-padded), {args.repeats} interleaved repeats, "
          f"{torch.get_num_threads()} threads")
    for shape, ro in shapes.items():
        for what, run in (("policy forward + backward", grad_pass), ("reference forward", ref_pass)):
            times = {True: [], False: []}
            out = {share: run(ro, share) for share in (True, False)}  # warm-up, and the values compared
            for _ in range(args.repeats):
                for share in (True, False):
                    t = time.perf_counter()
                    run(ro, share)
                    times[share].append(time.perf_counter() - t)
            shared, full = (float(np.median(times[s])) for s in (True, False))
            diff = (out[True] - out[False]).abs().max().item()
            print(f"{shape:16s} {what:26s} shared {shared:6.2f} s, full {full:6.2f} s: {full / shared:.2f}× "
                  f"(max |Δ log p| {diff:.1e})")


if __name__ == "__main__":
    main()
