"""Choosing a world by name: its loader and its proxy-RM factory (the world modules import base.py only)."""

from collections.abc import Callable

from goodhart.errors import GoodhartError
from goodhart.worlds.base import World

LAB_WORLDS = ("lab", "lab-tiny", "lab-small", "lab-tiny-small")  # worlds/lab.py's SPECS (imported lazily: it loads torch)


def proxy_factory(world: str, hf_cfg, backbone: str | None = None) -> Callable[[int], tuple]:
    """seed -> fresh (proxy RM, tokenizer): `backbone` if given, else the world's proxy backbone.

    Loads no policy, so RM-only commands stay fast.
    """
    from goodhart.worlds.hf import proxy_from_pretrained

    trust = bool(hf_cfg is not None and hf_cfg.trust_remote_code)
    if backbone is not None:
        return lambda seed: proxy_from_pretrained(backbone, seed, trust)
    if world == "smoke":
        from goodhart.worlds.smoke import make_proxy

        return make_proxy
    if world in LAB_WORLDS:  # the pretrained lab LM's body: building the world if need be
        from goodhart.worlds.lab import lab_world

        return lab_world(world).make_proxy
    if world in ("sentiment", "gao"):  # the gao world's proxy family is the sentiment world's
        from goodhart.worlds.sentiment import make_proxy

        return make_proxy
    return lambda seed: proxy_from_pretrained(hf_cfg.proxy_backbone, seed, trust)


def load_world(cfg) -> World:
    """Build the world named by cfg.world (a RunConfig); refuses sampling lengths the policy cannot hold."""
    world = _build_world(cfg)
    positions = getattr(getattr(world.policy, "config", None), "max_position_embeddings", None)
    sampling = getattr(cfg, "sampling", None)
    if positions and sampling is not None and sampling.max_new_tokens >= positions:
        raise GoodhartError(f"sampling.max_new_tokens = {sampling.max_new_tokens} but the policy holds "
                            f"{positions} positions (prompt included); lower it")
    return world


def _build_world(cfg) -> World:
    if cfg.world == "smoke":
        from goodhart.worlds.smoke import smoke_world

        return smoke_world(seed=cfg.seed)
    if cfg.world == "sentiment":
        from goodhart.worlds.sentiment import sentiment_world

        return sentiment_world()
    if cfg.world in LAB_WORLDS:
        from goodhart.worlds.lab import lab_world

        return lab_world(cfg.world)
    if cfg.world == "gao":
        from goodhart.worlds.gao import gao_world

        return gao_world()
    from goodhart.worlds.hf import hf_world

    return hf_world(cfg.hf)
