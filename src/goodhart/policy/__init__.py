"""Policies: sampling from a causal LM (and, later, KL estimators and training)."""
