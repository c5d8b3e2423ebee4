"""Reward models (SPEC §5): Bradley–Terry loss, gold-labelled comparisons, training and scoring."""
