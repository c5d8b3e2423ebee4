"""Seeds, the one place where the torch device is chosen, and mixed precision."""

import contextlib
import random

import numpy as np
import torch

from goodhart import dist
from goodhart.errors import GoodhartError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda when available, else cpu; 'cuda' without a GPU is a user error.

    Under torchrun this also joins the process group, and a CUDA run takes the GPU of its LOCAL_RANK."""
    if name == "cuda" and not torch.cuda.is_available():
        raise GoodhartError("device 'cuda' was asked for but no CUDA GPU is available; use device=auto or cpu")
    use_cuda = name == "cuda" or (name == "auto" and torch.cuda.is_available())
    local = dist.setup(use_cuda)
    return local if local is not None else torch.device("cuda" if use_cuda else "cpu")


def autocast(device: torch.device, precision: str):
    """Context for forward passes: bf16 autocast when precision == 'bf16' (weights and optimizer stay fp32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_state(path, map_location="cpu") -> dict:
    """A resumable training state saved by goodhart (torch.save of tensors and plain values), loaded with
    weights_only=True; a torn, truncated or foreign (arbitrary-pickle) file is one GoodhartError line."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, torch.serialization.pickle.UnpicklingError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GoodhartError(f"{path} is not a goodhart training state ({first[:200]}); delete it to start "
                            "again") from None
