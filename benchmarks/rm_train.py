"""Reward-model training throughput: goodhart's loop vs trl's RewardTrainer, same model, same data, one run.

    python benchmarks/rm_train.py [--pairs 512] [--world sentiment]

Both train MiniLM-L6 (the sentiment world's proxy backbone; the smoke world's tiny BERT with
--world smoke) for one epoch at batch 8, lr 3e-5, dropout on, max length 96, on the same
gold-labelled comparisons (sampled once and cached). Prints pairs/s of each and the ratio.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=int, default=512)
    ap.add_argument("--world", default="sentiment", choices=["smoke", "sentiment"])
    args = ap.parse_args()
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from goodhart.config import RMTraining, load_rm_train_config
    from goodhart.reward.run import preference_split
    from goodhart.reward.train import train_reward_model
    from goodhart.worlds import proxy_factory

    settings = RMTraining(lr=3e-5, epochs=1, batch_size=8, max_length=96)

    cfg = load_rm_train_config(world=args.world, overrides=[f"rm.max_pairs={args.pairs}"])
    train, _, _ = preference_split(cfg)
    make = proxy_factory(cfg.world, cfg.hf)

    warm, tok = make(0)  # warm up torch (thread pool, allocator) so neither side pays it
    train_reward_model(warm, tok, train.subset(range(32)), settings, seed=0)
    model, tok = make(0)
    model.train()
    t = time.perf_counter()
    train_reward_model(model, tok, train, settings, seed=0)
    ours = len(train) / (time.perf_counter() - t)

    model, tok = make(0)
    tok.eos_token = tok.eos_token or tok.sep_token  # trl appends EOS to every text
    ds = Dataset.from_dict({"prompt": [p + " " for p in train.prompts], "chosen": train.chosen,
                            "rejected": train.rejected})
    with tempfile.TemporaryDirectory() as out:
        trl_cfg = RewardConfig(output_dir=out, per_device_train_batch_size=8, learning_rate=3e-5, num_train_epochs=1,
                               max_length=96, use_cpu=True, bf16=False, report_to=[], save_strategy="no",
                               logging_steps=10_000, disable_dropout=False, seed=0, dataloader_num_workers=0)
        trainer = RewardTrainer(model=model, args=trl_cfg, train_dataset=ds, processing_class=tok)
        t = time.perf_counter()
        trainer.train()
        theirs = len(train) / (time.perf_counter() - t)
    print(f"{len(train)} pairs, {args.world} world's proxy backbone, "
          f"torch threads {torch.get_num_threads()}: goodhart {ours:.1f} pairs/s, trl RewardTrainer {theirs:.1f} "
          f"pairs/s, ratio {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
