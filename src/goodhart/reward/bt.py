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


def centering_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Mean (r(chosen) + r(rejected))²: pulls each pair's mean score to 0, fixing the BT loss's free
    offset (Eisenstein et al. 2023, "reward centering"). chosen, rejected: (P,). Returns a scalar."""
    return ((chosen + rejected) ** 2).mean()
