"""Best-of-N math (SPEC §1–§3): pure numpy/scipy functions, no model code."""

from goodhart.bon.estimator import bon_bootstrap, bon_estimate, bon_weights, default_ns, kl_bound

__all__ = ["bon_bootstrap", "bon_estimate", "bon_weights", "default_ns", "kl_bound"]
