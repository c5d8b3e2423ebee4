"""Bradley–Terry loss (SPEC §5)."""

import torch
import torch.nn.functional as F


def bt_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Mean −log σ(r(chosen) − r(rejected)) over P comparisons.

    SPEC §5; Bradley & Terry (1952), Gao et al. 2023 §2.2 / Ouyang et al. 2022 eq. 1.
    chosen, rejected: (P,) scores. Returns (scalar loss, stats with loss/bt, reward/accuracy, reward/margin).
    """
    if chosen.shape != rejected.shape or chosen.ndim != 1:
        raise ValueError(f"bt_loss needs two (P,) tensors, got {tuple(chosen.shape)} and {tuple(rejected.shape)}")
    margin = chosen - rejected
    loss = -F.logsigmoid(margin).mean()
    stats = {
        "loss/bt": loss.item(),
        "reward/accuracy": (margin > 0).float().mean().item(),
        "reward/margin": margin.mean().item(),
    }
    return loss, stats
