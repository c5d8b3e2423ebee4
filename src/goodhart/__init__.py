"""goodhart: study and fight reward-model overoptimization (Goodhart's law in RLHF).

The names below import without loading any model or model library; model-side functions
(`run_bon_study`, `load_world`, `train_reward_model`, `sample_completions`, `build_report`) are
imported on first use.
"""

from goodhart.bon import bon_bootstrap, bon_estimate, bon_weights, default_ns, kl_bound
from goodhart.bon.exact import bon_distribution, bon_kl
from goodhart.config import RMTraining, RunConfig, load_run_config
from goodhart.errors import GoodhartError
from goodhart.reward.ensemble import aggregate
from goodhart.reward.labels import make_pairs
from goodhart.reward.normalise import normalisation

_LAZY = {
    "run_bon_study": "goodhart.commands.run",
    "load_world": "goodhart.worlds",
    "World": "goodhart.worlds",
    "train_reward_model": "goodhart.reward.train",
    "Comparisons": "goodhart.reward.train",
    "score_pairs": "goodhart.scoring",
    "bt_loss": "goodhart.reward.bt",
    "weight_average": "goodhart.reward.warm",
    "sample_completions": "goodhart.sampling.engines",
    "build_report": "goodhart.report",
    "plot_bon": "goodhart.report",
    "mcnemar_exact": "goodhart.bon.prompt_stats",
    "paired_fall": "goodhart.bon.prompt_stats",
    "fit_bon": "goodhart.bon.fits",
    "fit_rl": "goodhart.bon.fits",
    "GaoFit": "goodhart.bon.fits",
}

__all__ = [
    "GoodhartError", "RMTraining", "RunConfig", "aggregate", "bon_bootstrap", "bon_distribution", "bon_kl", "bon_estimate", "bon_weights", "default_ns", "kl_bound",
    "load_run_config", "make_pairs", "normalisation", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'goodhart' has no attribute {name!r}")
