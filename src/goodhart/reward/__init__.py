"""Reward models (SPEC §5): Bradley–Terry loss, gold-labelled comparisons, training and scoring."""

from goodhart.reward.bt import bt_loss
from goodhart.reward.labels import make_pairs

__all__ = ["bt_loss", "make_pairs"]
