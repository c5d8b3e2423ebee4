"""Seeds and the one place where the torch device is chosen."""

import random

import numpy as np
import torch

from goodhart.errors import GoodhartError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda when available, else cpu; 'cuda' without a GPU is a user error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise GoodhartError("device 'cuda' was asked for but no CUDA GPU is available; use device=auto or cpu")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")
