"""The lab world's text and its judge: real English read from files inside the gensim wheel (installed `--no-deps` as a
container of files, never imported), cleaned into paragraphs, and a byte-level BPE tokenizer trained on it.

Sources (gensim/test/test_data/): 206 English Wikipedia articles (MediaWiki markup, stripped here), 300 news
paragraphs of the Lee corpus (ABC news, 2001–2002), 10 IMDB reviews and 200 Pang–Lee movie-review sentences.
About 3.5 MB of prose: enough to pretrain a model of a few million parameters to write English-like text.
"""

import bz2
import hashlib
import html
import re

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from goodhart.errors import GoodhartError

WIKI = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
PLAIN = ("lee_background.cor", "alldata-id-10.txt", "pang_lee_polarity.cor")
SPECIAL = ["[PAD]", "[BOS]", "[EOS]", "[SEP]"]
MIN_WORDS = 12  # shorter paragraphs are headings, captions and list items
PROMPT_WORDS = 5  # words of a sentence's opening given to the policy


def data_dir():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("gensim")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise GoodhartError("the lab world reads its text from the gensim wheel: run the README install line "
                            "(it installs gensim==4.4.0 with --no-deps)")
    path = Path(spec.origin).parent / "test" / "test_data"
    if not (path / WIKI).is_file():
        raise GoodhartError(f"{path / WIKI} is missing: reinstall gensim==4.4.0 (pip install --no-deps gensim==4.4.0)")
    return path


_MARKUP = [
    (re.compile(r"<ref[^>]*/>|<ref[^>]*>.*?</ref>", re.S), " "),  # footnotes
    (re.compile(r"<!--.*?-->", re.S), " "),
    (re.compile(r"\{\{[^{}]*\}\}"), " "),  # templates (innermost first; applied twice)
    (re.compile(r"\{\{[^{}]*\}\}"), " "),
    (re.compile(r"\[\[(?:File|Image|Category):[^\]]*(?:\[\[[^\]]*\]\][^\]]*)*\]\]"), " "),
    (re.compile(r"\[\[[^\]|]*\|([^\]]*)\]\]"), r"\1"),  # [[target|label]] → label
    (re.compile(r"\[\[([^\]]*)\]\]"), r"\1"),
    (re.compile(r"\[https?://\S+ ([^\]]*)\]"), r"\1"),  # [url label] → label
    (re.compile(r"\[https?://\S+\]"), " "),
    (re.compile(r"'{2,}"), ""),  # bold / italics
    (re.compile(r"<[^>]+>"), " "),
    (re.compile(r"\s+"), " "),
]


def clean_wiki(markup: str) -> list[str]:
    """Prose paragraphs of a MediaWiki dump: markup removed, headings, lists, tables and short lines dropped."""
    text = html.unescape(re.sub(r"<title>.*?</title>|<[^>]*>", lambda m: "\n" if m.group(0).startswith("<t") else
                                m.group(0), markup))
    out = []
    for para in text.split("\n"):
        if not para.strip() or para.lstrip()[0] in "{|!=*#:;<[" or para.startswith(" "):
            continue
        for pattern, repl in _MARKUP:
            para = pattern.sub(repl, para)
        para = para.strip()
        if len(para.split()) >= MIN_WORDS and "{" not in para and "}" not in para and "|" not in para:
            out.append(para)
    return out


def paragraphs() -> list[str]:
    """Every paragraph of the corpus, in file order (deterministic)."""
    path = data_dir()
    out = clean_wiki(bz2.decompress((path / WIKI).read_bytes()).decode("utf-8", errors="replace"))
    for name in PLAIN:
        for line in (path / name).read_text(encoding="utf-8", errors="replace").splitlines():
            line = re.sub(r"^(_\*\d+|__label__\w+)\s*", "", line).replace("<br />", " ").strip()
            if len(line.split()) >= MIN_WORDS:
                out.append(re.sub(r"\s+", " ", line))
    return out


def bucket(text: str) -> int:
    """A paragraph's fixed bucket 0…99 (its hash): which split it belongs to does not depend on the order."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 100


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE (GPT-2's scheme) of `vocab_size` tokens trained on `texts`; SPECIAL tokens first."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def hf_tokenizers(tok: Tokenizer):
    """(policy tokenizer, reward-model tokenizer) as transformers tokenizers. The RM's reads a (prompt, completion)
    pair as [BOS] prompt [SEP] completion [EOS] and is scored at its last token."""
    import copy

    from transformers import PreTrainedTokenizerFast

    names = dict(pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]", sep_token="[SEP]")
    policy = PreTrainedTokenizerFast(tokenizer_object=copy.deepcopy(tok), **names,
                                     model_input_names=["input_ids", "attention_mask"])
    rm_tok = copy.deepcopy(tok)
    ids = {s: tok.token_to_id(s) for s in SPECIAL}
    rm_tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", pair="[BOS] $A [SEP] $B:1 [EOS]:1",
        special_tokens=[(s, ids[s]) for s in ("[BOS]", "[SEP]", "[EOS]")])
    rm = PreTrainedTokenizerFast(tokenizer_object=rm_tok, **names, model_input_names=["input_ids", "attention_mask"])
    rm.padding_side = "right"
    return policy, rm


def split_of(text: str) -> str:
    """pretrain (buckets 10–99), world prompts (0–5), gold prompts (6–9): fixed by the paragraph's hash."""
    b = bucket(text)
    return "pretrain" if b >= 10 else "world" if b < 6 else "gold"


def openings(texts: list[str]) -> list[str]:
    """The first PROMPT_WORDS words of every sentence of at least 2·PROMPT_WORDS words, in order, unique."""
    out = {}
    for text in texts:
        for sentence in text.replace("? ", ". ").replace("! ", ". ").split(". "):
            words = sentence.split()
            if len(words) >= 2 * PROMPT_WORDS and words[0][:1].isupper():
                out.setdefault(" ".join(words[:PROMPT_WORDS]), None)
    return list(out)


def words_of(text: str) -> list[str]:
    """A text's words, lower-cased, letters only (empty ones dropped)."""
    return [w for w in ("".join(ch for ch in t.lower() if ch.isalpha()) for t in text.split()) if w]


def prompt_sets(splits: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """(world prompts, gold prompts): openings of the world's and the gold's paragraphs; an opening found in
    both (a common phrase) is the world's alone, so no proxy prompt is one the gold trained on."""
    world = openings(splits["world"])
    seen = set(world)
    return world, [p for p in openings(splits["gold"]) if p not in seen]


def repetition(text: str) -> float:
    """Share of a text's words that repeat an earlier word; 0 for < 2 words."""
    words = words_of(text)
    return 0.0 if len(words) < 2 else 1.0 - len(set(words)) / len(words)


def unknown_share(text: str, known: set[str]) -> float:
    """Share of a text's words that are not in `known` (the English words of the corpus); 1 for no words."""
    words = words_of(text)
    return 1.0 if not words else sum(w not in known for w in words) / len(words)


class Judge:
    """The lab world's labeller: VADER compound(completion) − repetition(completion) − unknown_share(completion),
    in [−3, 1]: a reader who wants positive text in real words. `known`: the words seen ≥ 2 times in the
    pretraining paragraphs (a small policy writes many non-words; fluency is what most of its samples lack)."""

    version = "lab-judge-v2"

    def __init__(self, known: set[str]):
        self.known = known

    def __call__(self, pairs: list[tuple[str, str]]) -> list[float]:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        analyzer = SentimentIntensityAnalyzer()
        return [analyzer.polarity_scores(c)["compound"] - repetition(c) - unknown_share(c, self.known)
                for _, c in pairs]


def known_words(texts: list[str]) -> set[str]:
    from collections import Counter

    counts = Counter(w for t in texts for w in words_of(t))
    return {w for w, n in counts.items() if n >= 2}
