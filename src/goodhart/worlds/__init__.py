"""Worlds: where the policy, prompts, gold reward and proxy-RM backbone come from.

- smoke: everything built locally in seconds (tests).
- sentiment (default): SmolLM2-135M-Instruct writes movie reviews, VADER judges, MiniLM-L6 proxy.
- hf: bring your own checkpoints, prompts and gold reward.
"""

from goodhart.worlds.base import World
from goodhart.worlds.registry import load_world, proxy_factory

__all__ = ["World", "load_world", "proxy_factory"]
