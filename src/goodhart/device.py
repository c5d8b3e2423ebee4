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


def native_bf16(device: torch.device, cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether bf16 matrix products run natively here: a CUDA GPU that supports bf16, or a CPU with AVX-512
    BF16 or AMX (its /proc/cpuinfo flags). Elsewhere oneDNN emulates bf16: 6× slower than fp32 on an
    AVX2 CPU (measured), so sampling.dtype auto keeps fp32 there."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with open(cpuinfo) as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def sampling_dtype(name: str, device: torch.device) -> torch.dtype:
    """sampling.dtype → the fast engine's decoder-body dtype: auto is bf16 where it is native (native_bf16)."""
    bf16 = name == "bf16" or (name == "auto" and native_bf16(device))
    return torch.bfloat16 if bf16 else torch.float32


def autocast(device: torch.device, precision: str):
    """Context for forward passes: bf16 autocast when precision == 'bf16' (weights and optimizer stay fp32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_state(path, map_location="cpu", keys: tuple[str, ...] = (), mmap: bool = False) -> dict:
    """A resumable training state saved by goodhart (torch.save of a dict of tensors and plain values), loaded
    with weights_only=True; a torn, truncated or foreign (arbitrary-pickle) file, or a dict without `keys`
    (another program's checkpoint), is one GoodhartError line. torch's warnings while reading are kept off
    the terminal. `mmap`: map the tensors instead of reading them (a cheap check before a resume)."""
    import warnings

    def refuse(why: str):
        return GoodhartError(f"{path} is not a goodhart training state ({why[:200]}); delete it to start again")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # the weights-only unpickler meets junk bytes with any error (IndexError on b"torn")
        raise refuse(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise refuse(f"no {', '.join(missing)}" if isinstance(data, dict) else f"a {type(data).__name__}, not a dict")
    return data
