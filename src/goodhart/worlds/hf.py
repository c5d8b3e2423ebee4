"""The `hf` world: the user's own policy, prompts, gold reward and proxy backbone.

Works offline from local directories (HF_HUB_OFFLINE=1 is set by the CLI). Weights load from
safetensors only, and remote code runs only with hf.trust_remote_code: true.
"""

import importlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from goodhart.errors import GoodhartError
from goodhart.worlds.base import World, read_prompt_file


def _load(what: str, path: str, loader, **kwargs):
    """from_pretrained with a one-line error saying which checkpoint could not be read."""
    try:
        return loader.from_pretrained(path, use_safetensors=True, **kwargs)
    except (OSError, ValueError, KeyError, SafetensorError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GoodhartError(f"could not load the {what} from {path!r}: {first[:200]}") from None


def _load_prompts(cfg) -> list[str]:
    path = Path(cfg.prompts)
    if path.suffix in (".jsonl", ".json") or path.is_file():
        return read_prompt_file(path, cfg.prompt_field)
    from datasets import load_dataset

    try:
        ds = load_dataset(cfg.prompts, split=cfg.prompts_split)
    except (OSError, ValueError, FileNotFoundError) as e:
        raise GoodhartError(f"could not load prompts dataset {cfg.prompts!r}: {str(e).splitlines()[0]}") from None
    if cfg.prompt_field not in ds.column_names:
        raise GoodhartError(f"prompts dataset {cfg.prompts!r} has no field {cfg.prompt_field!r} (has {ds.column_names})")
    prompts = [p for p in ds[cfg.prompt_field] if isinstance(p, str) and p.strip()]
    if not prompts:
        raise GoodhartError(f"prompts dataset {cfg.prompts!r} has no usable rows")
    return prompts


def _callable_gold(spec: str):
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise GoodhartError(f"gold callable {spec!r}: cannot import module {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise GoodhartError(f"gold callable {spec!r}: {module_name} has no function {attr!r}")
    return fn


def _gold_identity(spec: str, is_callable: bool) -> str:
    """What the gold score cache keys on: the spec plus a fingerprint of the code or weights behind it,
    so editing a gold function or retraining a gold checkpoint never serves stale scores."""
    import hashlib
    import inspect

    h = hashlib.sha256(spec.encode())
    if is_callable:
        try:
            source = inspect.getsourcefile(_callable_gold(spec))
        except TypeError:  # builtins and C functions have no source to fingerprint
            raise GoodhartError(f"gold callable {spec!r} is a builtin; wrap it in a Python function (its "
                                "source fingerprints the gold score cache)") from None
        h.update(Path(source).read_bytes() if source else b"")
    else:
        for f in sorted(Path(spec).glob("*")) if Path(spec).is_dir() else []:
            if f.is_file():
                h.update(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
    return f"{spec}@{h.hexdigest()[:16]}"


def _checkpoint_gold(path: str, trust_remote_code: bool):
    from goodhart.scoring import score_pairs

    model = _load("gold reward model", path, AutoModelForSequenceClassification, trust_remote_code=trust_remote_code)
    tok = _load("gold reward tokenizer", path, AutoTokenizer, trust_remote_code=trust_remote_code)
    model.eval()

    def gold(pairs):
        prompts, completions = zip(*pairs, strict=True) if pairs else ((), ())
        return score_pairs(model, tok, list(prompts), list(completions))

    return gold


def _identity(path: str) -> str:
    """A local checkpoint is identified by its path and weight files' sizes and mtimes; a hub id by name."""
    p = Path(path)
    if not p.is_dir():
        return path
    files = sorted(p.glob("*.safetensors"))
    return f"{p.resolve()}:" + ",".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def proxy_from_pretrained(path: str, seed: int, trust_remote_code: bool = False):
    """A fresh proxy RM: the encoder at `path` with a newly initialised 1-output score head."""
    torch.manual_seed(seed)
    model = _load("proxy backbone", path, AutoModelForSequenceClassification, num_labels=1,
                  trust_remote_code=trust_remote_code, ignore_mismatched_sizes=True)
    tok = _load("proxy tokenizer", path, AutoTokenizer, trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
        model.config.pad_token_id = tok.pad_token_id
    return model, tok


def hf_world(cfg) -> World:
    """Build a World from an HFWorldConfig (all four of policy, prompts, gold, proxy_backbone set)."""
    prompts = _load_prompts(cfg)
    trust = cfg.trust_remote_code
    tok = _load("policy tokenizer", cfg.policy, AutoTokenizer, trust_remote_code=trust)
    policy = _load("policy", cfg.policy, AutoModelForCausalLM, trust_remote_code=trust, dtype=torch.float32).eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    use_chat = cfg.chat_template == "on" or (cfg.chat_template == "auto" and tok.chat_template is not None)
    if cfg.chat_template == "on" and tok.chat_template is None:
        raise GoodhartError(f"hf.chat_template is 'on' but the tokenizer at {cfg.policy!r} has no chat template")

    def render(prompt: str) -> str:
        text = cfg.prompt_template.format(prompt=prompt)
        if not use_chat:
            return text
        return tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)

    is_callable = ":" in cfg.gold and not Path(cfg.gold).exists()
    gold = _callable_gold(cfg.gold) if is_callable else _checkpoint_gold(cfg.gold, trust)

    return World(
        name="hf", policy_id=_identity(cfg.policy), policy=policy, tokenizer=tok, prompts=prompts, render=render,
        add_special_tokens=not use_chat, gold=gold, gold_name=cfg.gold, gold_id=_gold_identity(cfg.gold, is_callable),
        make_proxy=lambda seed: proxy_from_pretrained(cfg.proxy_backbone, seed, trust),
        proxy_name=cfg.proxy_backbone,
    )
