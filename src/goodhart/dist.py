"""Multi-process runs under torchrun: rank, sharding, gathering and model wrapping in one place.

goodhart does not launch processes itself: `torchrun --nproc_per_node K -m goodhart …` (one node) or
torchrun's multi-node rendezvous start K processes that each run the same command.
`setup()` (called by `device.resolve_device`) joins the process group torchrun describes in the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR): NCCL on GPUs, gloo on CPUs. Without those
variables everything here is a no-op and a run is one process, exactly as before.

Division of work (docs in README "Scaling out"):
- sampling and scoring: `map_chunks` gives chunk j of a list to rank j mod K and gathers the results
  in order on every rank (sampling seeds each chunk by its index, so the samples do not depend on K);
- training: `wrap` puts the model in DistributedDataParallel (gradients averaged) or FSDP2
  `fully_shard` (parameters, gradients and optimizer state sharded); each rank takes its slice of
  every global batch;
- writing: only rank 0 writes the run directory (RunDir checks `runs.writer`, read from RANK without
  torch), in the same format as a one-process run.
"""

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch

from goodhart.errors import GoodhartError
from goodhart.runs import launched  # noqa: F401  (torch-free; re-exported: dist.launched())


def active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if active() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def setup(use_cuda: bool) -> torch.device | None:
    """Join torchrun's process group (once); returns this rank's CUDA device when use_cuda, else None."""
    if not launched():
        return None
    if not torch.distributed.is_available():
        raise GoodhartError("this torch build has no torch.distributed; run in one process")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    if not active():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
        if not is_main():  # one voice: rank 0 prints progress, results and errors
            from goodhart.progress import console

            console.quiet = True
    return torch.device("cuda", local) if use_cuda else None


def teardown(wait: bool = False) -> None:
    """Leave the process group. `wait` (a command that finished on every rank): meet the other ranks first, so
    none destroys its group while a peer's last collective still runs (gloo aborts the process then)."""
    if active():
        if wait:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def barrier() -> None:
    if active():
        torch.distributed.barrier()


def gather(obj) -> list:
    """[obj of rank 0, obj of rank 1, …] on every rank (any picklable-by-torch Python object)."""
    if not active():
        return [obj]
    out = [None] * world_size()
    torch.distributed.all_gather_object(out, obj)
    return out


def on_main(fn: Callable[[], object]):
    """Run fn on rank 0 only and hand its result (or its GoodhartError, raised on every rank) to all ranks."""
    if not active():
        return fn()
    result = error = None
    if is_main():
        try:
            result = fn()
        except GoodhartError as e:
            error = str(e)
    result, error = gather((result, error))[0]
    if error is not None:
        raise GoodhartError(error)
    return result


def mean(values: dict[str, float]) -> dict[str, float]:
    """Average float metrics over ranks (logging of per-rank step statistics)."""
    if not active():
        return values
    keys = sorted(k for k, v in values.items() if isinstance(v, (int, float)) and v is not None)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return values | {k: v / world_size() for k, v in zip(keys, t.tolist(), strict=True)}


def my_slice(items: Sequence) -> list:
    """This rank's strided share of a global batch: items[rank::K]."""
    return list(items[rank()::world_size()])


def share_size(n: int, chunk: int) -> int:
    """How many of n items (in chunks of `chunk`) map_chunks gives this rank (for its progress bar)."""
    return sum(min(chunk, n - s) for s in range(rank() * chunk, n, chunk * world_size()))


def map_chunks(fn: Callable[[list, int], list], items: Sequence, chunk: int, advance=None) -> list:
    """fn(items[j·chunk:(j+1)·chunk], j) for every chunk j, chunk j on rank j mod K; the concatenated
    results, in the original order, on every rank. `advance(n)` is told of each finished chunk's size."""
    starts = range(0, len(items), chunk)
    mine = {}
    for j in range(rank(), len(starts), world_size()):
        part = list(items[starts[j] : starts[j] + chunk])
        mine[j] = fn(part, j)
        if len(mine[j]) != len(part):
            raise GoodhartError(f"chunk {j}: {len(part)} items in, {len(mine[j])} out")
        if advance is not None:
            advance(len(part))
    merged = {}
    for part in gather(mine):
        merged.update(part)
    return [x for j in range(len(starts)) for x in merged[j]]


def map_pairs(score: Callable[[list[str], list[str]], Sequence[float]], prompts: list[str], completions: list[str],
              chunk: int = 512) -> np.ndarray:
    """score(prompts, completions) → floats, computed in chunks spread over the ranks; (B,) float64 on every rank."""
    items = list(zip(prompts, completions, strict=True))

    def run(part: list, j: int) -> list[float]:
        return [float(x) for x in score([p for p, _ in part], [c for _, c in part])]

    return np.asarray(map_chunks(run, items, chunk), dtype=np.float64)


def _layer_lists(model) -> list:
    """Repeated blocks (members of nn.ModuleLists of ≥ 2 modules): the units FSDP shards one at a time."""
    return [block for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) > 1 for block in m]


def wrap(model, parallel: str, device: torch.device):
    """The model to train under torchrun: DDP (a full copy per process, gradients averaged) or FSDP2
    (each block and the root sharded across ranks). Without torchrun the model itself."""
    if not active():
        return model
    if parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in _layer_lists(model):
            fully_shard(block)
        fully_shard(model)
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def wrap_policy(policy, ref, anchor, parallel: str, device: torch.device):
    """(net, ref, anchor) for policy training: gradients flow through `net` (DDP or FSDP around the
    policy); under FSDP the frozen reference and anchor are sharded the same way (same collectives).
    Sampling and frozen forwards use the modules themselves. Without torchrun: (policy, ref, anchor)."""
    net = wrap(policy, parallel, device)
    if is_sharded(policy):
        ref = wrap(ref, "fsdp", device)
        anchor = wrap(anchor, "fsdp", device) if anchor is not None else None
    return net, ref, anchor


def is_sharded(model) -> bool:
    return any(type(p).__name__ == "DTensor" for p in model.parameters())


def reshard(*models) -> None:
    """Return FSDP2 models to their sharded parameters (the root keeps gathered ones after a forward
    without backward), so parameter-wise updates see matching shards. A no-op for other models."""
    for model in models:
        if hasattr(model, "reshard") and is_sharded(model):
            model.reshard()


def full_state_dict(model) -> dict | None:
    """The weights to save for an FSDP-sharded model (the gathered shards, on rank 0's CPU only; a
    collective: every rank calls it); None for any other model, whose own state_dict save_pretrained uses."""
    if not is_sharded(model):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
