"""Policy step time: J-BOND vs RLOO, the same world, policy, proxy RM, batch and samples per prompt,
steps interleaved (RLOO, J-BOND, RLOO, …) so machine noise hits both alike; a warm-up step each first.

    python benchmarks/policy_step.py [--world sentiment] [--steps 3] [--batch-prompts 8]

Prints the mean step time of each, the ratio (target ≤ 1.3×) and where a J-BOND step's time goes
(anchor and policy generation vs proxy scoring vs forward/backward and the optimizer), from timers
around policy.train's own sample / proxy_scores / logprobs functions. The proxy RM is the world's untrained proxy backbone: step time
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
    args = ap.parse_args()
    from goodhart.config import PolicyTrainConfig
    from goodhart.policy import train
    from goodhart.reward.load import RewardModel
    from goodhart.worlds import load_world

    trainers, timers = {}, defaultdict(float)
    for name in ("sample", "proxy_scores", "logprobs"):  # time the loop's own parts (looked up at call time)
        setattr(train, name, _timed(getattr(train, name), timers, name))
    for method in ("rloo", "jbond"):
        cfg = PolicyTrainConfig(world=args.world, reward_model="-", method=method, device="cpu",
                                batch_prompts=args.batch_prompts)
        world = load_world(cfg)
        rm = RewardModel([world.make_proxy(0)], name="untrained")
        device = torch.device("cpu")
        trainers[method] = (train.Setup(cfg, world, rm, device), train.build_models(cfg, world, device),
                            {"step": 0, "baseline": 0.0, "norm": None})
    prompts = world.prompts[: args.batch_prompts]
    times = defaultdict(list)
    for step in range(args.steps + 1):
        if step == 1:
            timers.clear()  # step 0 warms up
        for method, (setup, models, state) in trainers.items():
            torch.manual_seed(step)
            t = time.perf_counter()
            train.train_step(setup, models, prompts, state)
            if step > 0:
                times[method].append(time.perf_counter() - t)
    rloo, jbond = np.mean(times["rloo"]), np.mean(times["jbond"])
    print(f"world {args.world}, {args.batch_prompts} prompts × {trainers['rloo'][0].cfg.samples_per_prompt} samples, "
          f"{args.steps} steps each, {torch.get_num_threads()} threads")
    print(f"RLOO   {rloo:7.2f} s/step  {np.round(times['rloo'], 2).tolist()}")
    print(f"J-BOND {jbond:7.2f} s/step  {np.round(times['jbond'], 2).tolist()}")
    print(f"ratio J-BOND / RLOO: {jbond / rloo:.2f}× (target ≤ 1.3×)")
    for method, total in (("rloo", rloo), ("jbond", jbond)):
        parts = {name: timers[(method, name)] / args.steps for name in ("sample", "proxy_scores", "logprobs")}
        rest = total - sum(parts.values())
        print(f"{method:6s} where the time goes: " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
              + f", backward + optimizer + rest {rest:.2f} s")


def _timed(fn, timers, name):
    def wrapper(setup, *a, **kw):
        t = time.perf_counter()
        out = fn(setup, *a, **kw)
        timers[(setup.cfg.method, name)] += time.perf_counter() - t
        return out

    return wrapper


if __name__ == "__main__":
    main()
