"""A family of proxy-RM sizes cut from one pretrained backbone (Gao et al. 2023 vary the RM size).

A size keeps the first `layers` layers, the first `hidden` hidden dimensions (whole attention heads:
the head width is kept) and the first `intermediate` feed-forward units of the backbone: every
weight of the small model is the leading block of the matching pretrained weight ("weight
subcloning"). Every size is a standard config of the same architecture, so it trains, saves and
loads like any transformers checkpoint. Written by hand: transformers 5 has no structured pruning.
"""

import copy

import torch

from goodhart.errors import GoodhartError

# config attribute names of BERT-style encoders (BERT, MiniLM, RoBERTa, DeBERTa, ELECTRA, …) and of Llama
_KV_HEADS = "num_key_value_heads"  # Llama-style attention: kept equal to the heads when they were equal
_LAYERS, _HIDDEN, _FFN, _HEADS = "num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads"


def count_params(model) -> tuple[int, int]:
    """(non-embedding, total) parameters; non-embedding is Kaplan et al.'s measure of model size."""
    total = sum(p.numel() for p in model.parameters())
    embed = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n or "embed_tokens" in n)
    return total - embed, total


def sized_config(config, layers: int | None = None, hidden: int | None = None, intermediate: int | None = None):
    """A copy of `config` with fewer layers / hidden dims / feed-forward units (None = keep)."""
    missing = [k for k in (_LAYERS, _HIDDEN, _FFN, _HEADS) if not hasattr(config, k)]
    if missing:
        raise GoodhartError(f"RM sizes need a BERT-style encoder config; {type(config).__name__} lacks {missing}")
    head = getattr(config, _HIDDEN) // getattr(config, _HEADS)
    new = copy.deepcopy(config)
    for key, value in ((_LAYERS, layers), (_HIDDEN, hidden), (_FFN, intermediate)):
        if value is None:
            continue
        if not 1 <= value <= getattr(config, key):
            raise GoodhartError(f"RM size {key} = {value} must lie in [1, {getattr(config, key)}] (the backbone's)")
        setattr(new, key, value)
    if getattr(new, _HIDDEN) % head:
        raise GoodhartError(f"RM size hidden = {getattr(new, _HIDDEN)} must be a multiple of the head width {head}")
    if getattr(config, _KV_HEADS, None) not in (None, getattr(config, _HEADS)):
        raise GoodhartError("RM sizes cannot cut a backbone with grouped-query attention (fewer key/value heads)")
    setattr(new, _HEADS, getattr(new, _HIDDEN) // head)
    if getattr(config, _KV_HEADS, None) is not None:
        setattr(new, _KV_HEADS, getattr(new, _HEADS))
    if getattr(config, "head_dim", None) is not None:
        new.head_dim = head
    return new


def shrink(model, layers: int | None = None, hidden: int | None = None, intermediate: int | None = None):
    """A new model of the same class whose weights are the leading blocks of `model`'s.

    Q/K/V rows are stored head by head, so keeping the first `hidden` rows keeps whole heads.
    """
    config = sized_config(model.config, layers, hidden, intermediate)
    small = type(model)(config)
    source = model.state_dict()
    with torch.no_grad():
        for name, tensor in small.state_dict().items():
            if name not in source:
                raise GoodhartError(f"cannot cut {name} from the backbone (not in its weights)")
            tensor.copy_(source[name][tuple(slice(0, s) for s in tensor.shape)])
    return small
