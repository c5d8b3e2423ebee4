"""Policy step time: J-BOND vs RLOO, the same world, policy, proxy RM, batch and samples per prompt,
steps interleaved (RLOO, J-BOND, RLOO, …) so machine noise hits both alike; a warm-up step each first.

    python benchmarks/policy_step.py [--world sentiment] [--steps 3] [--batch-prompts 8] [--full-forward]
    python benchmarks/policy_step.py --logprobs --steps 5     # the log-probability passes alone, shared vs full
    python benchmarks/policy_step.py --evaluation --steps 3   # one evaluation (24 × 4 samples): rollouts by hf vs fast
    python benchmarks/policy_step.py --engine fast            # the steps with the fast engine's rollouts

Three trainers: RLOO, J-BOND as shipped (anchor and policy samples drawn side by side in two threads,
concurrent_sampling=true) and J-BOND drawing them one after the other (concurrent_sampling=false).
Prints the median step time of each, the ratios (target ≤ 1.3×) and where each step's time goes
(generation vs proxy scoring vs log-probability forwards vs backward and the optimizer), from timers
around policy.train's own sample_both / sample / proxy_scores / logprobs functions. The proxy RM is the world's untrained proxy backbone: step time
does not depend on what the RM learned.
"""

import argparse
import os
import time
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-prompts", type=int, default=8)
    ap.add_argument("--full-forward", action="store_true",
                    help="log-probabilities by one forward over every row, each row's prompt included (as before "
                         "prompts were shared: token_logprobs(share_prompts=False))")
    ap.add_argument("--logprobs", action="store_true",
                    help="measure only the log-probability passes, prompts shared vs full forward (--steps repeats)")
    ap.add_argument("--evaluation", action="store_true",
                    help="time one evaluation (gold, proxy and KL of --eval-prompts × 4 samples) with the rollouts "
                         "drawn by generate (hf) vs the fast engine, --steps interleaved repeats")
    ap.add_argument("--eval-prompts", type=int, default=24)
    ap.add_argument("--engine", default="hf", choices=["hf", "fast"], help="rollout engine of the step trainers")
    args = ap.parse_args()
    if args.logprobs:
        return logprob_passes(args)
    if args.evaluation:
        return evaluation_times(args)
    from goodhart.config import PolicyTrainConfig
    from goodhart.policy import train
    from goodhart.reward.load import RewardModel
    from goodhart.worlds import load_world

    if args.full_forward:
        full = train.token_logprobs
        train.token_logprobs = lambda model, ro: full(model, ro, share_prompts=False)
    trainers, timers, labels = {}, defaultdict(float), {}
    parts = ("generate", "proxy_scores", "logprobs")
    train.sample_both = _timed(train.sample_both, timers, "generate", labels)  # J-BOND's two rollouts
    for name in ("sample", "proxy_scores", "logprobs"):  # time the loop's own parts (looked up at call time)
        setattr(train, name, _timed(getattr(train, name), timers, "generate" if name == "sample" else name, labels))
    for label, method, concurrent in (("rloo", "rloo", True), ("jbond", "jbond", True),
                                      ("jbond-seq", "jbond", False)):
        cfg = PolicyTrainConfig(world=args.world, reward_model="-", method=method, device="cpu",
                                batch_prompts=args.batch_prompts, sampling={"engine": args.engine},
                                **({} if method == "rloo" else {"concurrent_sampling": concurrent}))
        world = load_world(cfg)
        rm = RewardModel([world.make_proxy(0)], name="untrained")
        device = torch.device("cpu")
        setup = train.Setup(cfg, world, rm, device)
        labels[id(setup)] = label
        trainers[label] = (setup, train.build_models(cfg, world, device), {"step": 0, "baseline": 0.0, "norm": None})
    prompts = world.prompts[: args.batch_prompts]
    times = defaultdict(list)
    for step in range(args.steps + 1):
        if step == 1:
            timers.clear()  # step 0 warms up
        for label, (setup, models, state) in trainers.items():
            torch.manual_seed(step)
            t = time.perf_counter()
            train.train_step(setup, models, prompts, state)
            if step > 0:
                times[label].append(time.perf_counter() - t)
    med = {label: float(np.median(v)) for label, v in times.items()}
    print(f"world {args.world}, {args.batch_prompts} prompts × {trainers['rloo'][0].cfg.samples_per_prompt} samples, "
          f"{args.steps} steps each (median), {torch.get_num_threads()} threads, rollouts by {args.engine}, "
          f"{'full forward' if args.full_forward else 'prompts shared'} in log-probabilities")
    for label in trainers:
        print(f"{label:9s} {med[label]:7.2f} s/step  {np.round(times[label], 2).tolist()}")
    print(f"ratio J-BOND / RLOO: {med['jbond'] / med['rloo']:.2f}× (target ≤ 1.3×); "
          f"sequential sampling: {med['jbond-seq'] / med['rloo']:.2f}×")
    for label in trainers:
        spent = {name: timers[(label, name)] / args.steps for name in parts}
        rest = float(np.mean(times[label])) - sum(spent.values())
        print(f"{label:9s} where the time goes: " + ", ".join(f"{k} {v:.2f} s" for k, v in spent.items())
              + f", backward + optimizer + rest {rest:.2f} s")


def logprob_passes(args) -> None:
    """--logprobs: a step's log-probability passes with each distinct prompt computed once (token_logprobs
    with share_prompts, the default) vs one forward over the whole rows, prompts included, at RLOO's shape
    (batch prompts × 2 samples) and J-BOND's stacked one (+ 1 best anchor sample per prompt): the policy's
    forward + backward and the frozen reference's forward, repeats interleaved; median seconds per pass, the
    speed-up and the largest log-probability difference."""
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
    b = args.batch_prompts
    shapes = {f"rloo ({b}×2)": own, f"jbond ({b} + {b}×2)": train.stack_rollouts([best, own], world.tokenizer.pad_token_id)}

    def grad_pass(ro, share):
        logp = token_logprobs(models.policy, ro, share_prompts=share)
        logp.sum().backward()
        models.policy.zero_grad(set_to_none=True)
        return logp.detach()

    def ref_pass(ro, share):
        with torch.no_grad():
            return token_logprobs(models.ref, ro, share_prompts=share)

    print(f"world {args.world}, {args.batch_prompts} prompts, completions ≤ {own.valid_mask.shape[1]} tokens, "
          f"prompt {own.prompt_len} tokens (left-padded), {args.steps} interleaved repeats, "
          f"{torch.get_num_threads()} threads")
    for shape, ro in shapes.items():
        for what, run in (("policy forward + backward", grad_pass), ("reference forward", ref_pass)):
            times = {True: [], False: []}
            out = {share: run(ro, share) for share in (True, False)}  # warm-up, and the values compared
            for _ in range(args.steps):
                for share in (True, False):
                    t = time.perf_counter()
                    run(ro, share)
                    times[share].append(time.perf_counter() - t)
            shared, full = (float(np.median(times[s])) for s in (True, False))
            diff = (out[True] - out[False]).abs().max().item()
            print(f"{shape:16s} {what:26s} shared {shared:6.2f} s, full {full:6.2f} s: {full / shared:.2f}× "
                  f"(max |Δ log p| {diff:.1e})")


def evaluation_times(args) -> None:
    """--evaluation: policy.train.evaluate (the pareto grid's every-2-steps measurement) at --eval-prompts × 4
    samples, its rollouts drawn by generate (hf) and by the fast engine, repeats interleaved after a warm-up
    each; median seconds and where they go (sampling, the policy's and reference's log-probability passes)."""
    from goodhart.config import PolicyTrainConfig
    from goodhart.policy import train
    from goodhart.reward.load import RewardModel
    from goodhart.worlds import load_world

    timers, labels, runs = defaultdict(float), {}, {}
    for name in ("sample", "logprobs"):
        setattr(train, name, _timed(getattr(train, name), timers, name, labels))
    for engine in ("hf", "fast"):
        cfg = PolicyTrainConfig(world=args.world, reward_model="-", method="rloo", device="cpu",
                                eval_prompts=args.eval_prompts, eval_samples_per_prompt=4, sampling={"engine": engine})
        world = load_world(cfg)
        setup = train.Setup(cfg, world, RewardModel([world.make_proxy(0)], name="untrained"), torch.device("cpu"))
        labels[id(setup)] = engine
        runs[engine] = (setup, train.build_models(cfg, world, setup.device))
    prompts = world.prompts[: args.eval_prompts]
    times = defaultdict(list)
    for rep in range(args.steps + 1):
        if rep == 1:
            timers.clear()  # the first round warms up
        for engine, (setup, models) in runs.items():
            torch.manual_seed(rep)
            t = time.perf_counter()
            train.evaluate(setup, models, prompts, {"norm": None})
            if rep > 0:
                times[engine].append(time.perf_counter() - t)
    med = {engine: float(np.median(v)) for engine, v in times.items()}
    print(f"world {args.world}, one evaluation of {args.eval_prompts} prompts × 4 samples, {args.steps} interleaved "
          f"repeats (median), {torch.get_num_threads()} threads")
    for engine in runs:
        parts = ", ".join(f"{name} {timers[(engine, name)] / args.steps:.2f} s" for name in ("sample", "logprobs"))
        print(f"{engine:5s} {med[engine]:6.2f} s  {np.round(times[engine], 2).tolist()}  ({parts})")
    print(f"evaluation with fast rollouts: {med['hf'] / med['fast']:.2f}× the hf one")


INSIDE_SAMPLE_BOTH = [False]  # sample() calls made by sample_both are already in its "generate" time


def _timed(fn, timers, name, labels):
    """fn timed into timers[(trainer label, name)] (setup is every timed function's first argument)."""
    outer = fn.__name__ == "sample_both"

    def wrapper(setup, *a, **kw):
        if fn.__name__ == "sample" and INSIDE_SAMPLE_BOTH[0]:
            return fn(setup, *a, **kw)
        INSIDE_SAMPLE_BOTH[0] = outer
        t = time.perf_counter()
        try:
            return fn(setup, *a, **kw)
        finally:
            timers[(labels[id(setup)], name)] += time.perf_counter() - t
            INSIDE_SAMPLE_BOTH[0] = False

    return wrapper


if __name__ == "__main__":
    main()
