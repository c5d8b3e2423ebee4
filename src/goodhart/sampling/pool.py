"""Policy samples with their gold scores, generated once per (world, prompts, k, sampling, seed)
and cached on disk by content hash (sampling dominates every CPU study)."""

import hashlib
import json
from functools import partial

import numpy as np

from goodhart import dist
from goodhart.device import sampling_dtype
from goodhart.progress import console
from goodhart.runs import atomic_write_text, cache_dir
from goodhart.sampling.engines import completion_grid, sample_completions, vllm_completions


def pool_key(world, prompts: list[str], k: int, sampling, seed: int) -> str:
    """Content hash of everything that determines the samples and their gold scores."""
    spec = {
        "policy": world.policy_id, "gold": world.gold_name, "inputs": [world.render(p) for p in prompts],
        "prompts": prompts, "k": k, "seed": seed,
        # the dtype the fast engine resolves here (auto: bf16 where native); other engines ignore it
        "sampling": sampling.model_dump() | {"dtype": str(body_dtype(world, sampling)).removeprefix("torch.")
                                             if sampling.engine == "fast" else "float32"},
        "sampler": "seed-per-batch",  # each generate() batch has its own seed: samples do not depend on the process count
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def body_dtype(world, sampling):
    """The fast engine's decoder-body dtype for this world's policy (sampling.dtype resolved on its device)."""
    return sampling_dtype(sampling.dtype, next(world.policy.parameters()).device)


def policy_pool(world, prompts: list[str], k: int, sampling, seed: int, what: str = "sample",
                use_cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """k completions per prompt from the world's policy and their gold scores: ((B, K) str, (B, K) float)."""
    path = cache_dir() / "pools" / f"{world.name}-{pool_key(world, prompts, k, sampling, seed)}.json"
    # rank 0 decides (and reads) for every rank: the cache may live on its disk only
    data = dist.on_main(lambda: json.loads(path.read_text()) if use_cache and path.is_file() else None)
    if data is not None:
        console.print(f"{what}: {len(prompts)}×{k} samples from cache {path.name}")
        return completion_grid(data["completions"]), np.asarray(data["gold"], dtype=np.float64)
    draw = vllm_completions if sampling.engine == "vllm" else partial(
        sample_completions, batch_size=sampling.batch_size, description=what,
        engine=sampling.engine, dtype=body_dtype(world, sampling))
    comps = completion_grid(draw(
        world.policy, world.tokenizer, [world.render(p) for p in prompts], k,
        max_new_tokens=sampling.max_new_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
        add_special_tokens=world.add_special_tokens, seed=seed,
    ))
    B, K = comps.shape
    gold = dist.map_pairs(world.gold_scores, [p for p in prompts for _ in range(K)], list(comps.ravel())).reshape(B, K)
    if use_cache and dist.is_main():
        atomic_write_text(path, json.dumps({"completions": comps.tolist(), "gold": gold.tolist()}))
    return comps, gold
