"""Policy samples with their gold scores, generated once per (world, prompts, k, sampling, seed)
and cached on disk by content hash (sampling dominates every CPU study)."""

import hashlib
import json

import numpy as np
import torch

from goodhart.policy.sampling import completion_grid, sample_completions
from goodhart.progress import console
from goodhart.runs import atomic_write_text, cache_dir


def pool_key(world, prompts: list[str], k: int, sampling, seed: int) -> str:
    """Content hash of everything that determines the samples and their gold scores."""
    spec = {
        "policy": world.policy_id, "gold": world.gold_name, "inputs": [world.render(p) for p in prompts],
        "prompts": prompts, "k": k, "sampling": sampling.model_dump(exclude={"batch_size"}), "seed": seed,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def policy_pool(world, prompts: list[str], k: int, sampling, seed: int, what: str = "sample",
                use_cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """k completions per prompt from the world's policy and their gold scores: ((B, K) str, (B, K) float)."""
    path = cache_dir() / "pools" / f"{world.name}-{pool_key(world, prompts, k, sampling, seed)}.json"
    if use_cache and path.is_file():
        data = json.loads(path.read_text())
        console.print(f"{what}: {len(prompts)}×{k} samples from cache {path.name}")
        return completion_grid(data["completions"]), np.asarray(data["gold"], dtype=np.float64)
    torch.manual_seed(seed)
    comps = completion_grid(sample_completions(
        world.policy, world.tokenizer, [world.render(p) for p in prompts], k,
        max_new_tokens=sampling.max_new_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
        batch_size=sampling.batch_size, add_special_tokens=world.add_special_tokens, description=what,
    ))
    B, K = comps.shape
    gold = world.gold_scores([p for p in prompts for _ in range(K)], list(comps.ravel())).reshape(B, K)
    if use_cache:
        atomic_write_text(path, json.dumps({"completions": comps.tolist(), "gold": gold.tolist()}))
    return comps, gold
