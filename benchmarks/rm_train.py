"""Reward-model training throughput: goodhart's loop vs trl's RewardTrainer, same model, same data, one run.

    python benchmarks/rm_train.py [--pairs 512] [--world sentiment]

Both train MiniLM-L6 (the sentiment world's proxy backbone; the smoke world's tiny BERT with
--world smoke) for one epoch at batch 8, lr 3e-5, dropout on, max length 96, on the same
gold-labelled comparisons (sampled once and cached), in fp32 and — on CPUs with AVX-512 BF16 — with
bf16 autocast (goodhart `precision: bf16`, trl `bf16=True`). Prints pairs/s (median of --runs
interleaved runs), validation accuracy of each and the ratios. Accuracies are compared on the same
validation pairs (SPEC §11: paired classifiers), each goodhart variant against trl at its default precision
(fp32), first runs: the exact McNemar p, and the accuracy difference averaged over validation prompts with
its 95% interval from resampling those prompts (a prompt's pairs share its completions, so pairs are not
independent).
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=int, default=512)
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from goodhart.bon.estimator import prompt_interval
    from goodhart.bon.prompt_stats import mcnemar_exact
    from goodhart.config import RMTraining, load_rm_train_config
    from goodhart.reward.run import preference_split
    from goodhart.reward.train import evaluate_comparisons, train_reward_model
    from goodhart.worlds import proxy_factory

    settings = RMTraining(lr=3e-5, epochs=1, batch_size=8, max_length=96)

    cfg = load_rm_train_config(world=args.world, overrides=[f"rm.max_pairs={args.pairs}"])
    train, val, _ = preference_split(cfg)
    make = proxy_factory(cfg.world, cfg.hf)

    warm, tok = make(0)  # warm up torch (thread pool, allocator) so neither side pays it
    train_reward_model(warm, tok, train.subset(range(32)), settings, seed=0)
    bf16 = torch.cpu._is_avx512_bf16_supported() if hasattr(torch.cpu, "_is_avx512_bf16_supported") else False
    precisions = ["fp32", "bf16"] if bf16 else ["fp32"]

    def ours(precision: str) -> tuple[float, np.ndarray]:
        model, tok = make(0)
        model.train()
        t = time.perf_counter()
        train_reward_model(model, tok, train, settings.model_copy(update={"precision": precision}), seed=0)
        rate = len(train) / (time.perf_counter() - t)
        return rate, evaluate_comparisons(model, tok, val, 96)["correct"]

    def theirs(precision: str) -> tuple[float, np.ndarray]:
        model, tok = make(0)
        tok.eos_token = tok.eos_token or tok.sep_token  # trl appends EOS to every text
        ds = Dataset.from_dict({"prompt": [p + " " for p in train.prompts], "chosen": train.chosen,
                                "rejected": train.rejected})
        with tempfile.TemporaryDirectory() as out:
            trl_cfg = RewardConfig(output_dir=out, per_device_train_batch_size=8, learning_rate=3e-5,
                                   num_train_epochs=1, max_length=96, use_cpu=True, bf16=precision == "bf16",
                                   report_to=[], save_strategy="no", logging_steps=10_000, disable_dropout=False,
                                   seed=0, dataloader_num_workers=0)
            trainer = RewardTrainer(model=model, args=trl_cfg, train_dataset=ds, processing_class=tok)
            t = time.perf_counter()
            trainer.train()
            rate = len(train) / (time.perf_counter() - t)
        return rate, evaluate_comparisons(model, tok, val, 96)["correct"]

    runs = {(who, p): [] for who in ("goodhart", "trl") for p in precisions}
    for _ in range(args.runs):  # interleaved, so machine noise hits every variant alike
        for who, p in runs:
            runs[(who, p)].append((ours if who == "goodhart" else theirs)(p))
    med = {k: sorted(r[0] for r in v)[len(v) // 2] for k, v in runs.items()}
    hits = {k: v[0][1] for k, v in runs.items()}  # per-pair correctness of each variant's first run
    prompts, prompt_of = np.unique(val.prompts, return_inverse=True)  # SPEC §11: prompts are the unit
    print(f"{len(train)} pairs, {args.world} world's proxy backbone, torch threads {torch.get_num_threads()}, "
          f"median of {args.runs} interleaved runs")
    for k in runs:
        print(f"{k[0]:9s} {k[1]}: {med[k]:6.1f} pairs/s, validation accuracy {hits[k].mean():.3f} ({len(val)} pairs)")
    for p in precisions:  # each goodhart variant against trl as users run it (fp32), on the same pairs
        a, b = hits[("goodhart", p)], hits[("trl", "fp32")]
        per_prompt = np.array([[(a - b)[prompt_of == j].mean()] for j in range(len(prompts))])
        (lo,), (hi,) = prompt_interval(per_prompt, 2000, seed=0)
        only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
        print(f"accuracy goodhart {p} − trl fp32: {per_prompt.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] (mean over "
              f"{len(prompts)} validation prompts, 95% prompt bootstrap); McNemar {only_a} vs {only_b} discordant "
              f"pairs, p = {mcnemar_exact(only_a, only_b):.3f}")
    print(f"goodhart fp32 / trl fp32: {med[('goodhart', 'fp32')] / med[('trl', 'fp32')]:.2f}x")
    if bf16:
        print(f"goodhart bf16 / trl fp32: {med[('goodhart', 'bf16')] / med[('trl', 'fp32')]:.2f}x; goodhart bf16 / "
              f"trl bf16: {med[('goodhart', 'bf16')] / med[('trl', 'bf16')]:.2f}x")


if __name__ == "__main__":
    main()
