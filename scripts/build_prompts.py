"""Build the prompt files shipped in src/goodhart/worlds/data/ (run once; output is committed).

Sources are text corpora that ship inside the `gensim` wheel (gensim/test/test_data), read as
plain files without importing gensim:
- movie_prompts.jsonl: openings (first 4 words) of Pang-Lee polarity sentences and of the
  sentences of 10 IMDB reviews — the in-domain prompts of the sentiment world.
- news_prompts.jsonl: openings of Lee news paragraphs — an out-of-domain prompt set.

    pip install --no-deps gensim==4.4.0 && python scripts/build_prompts.py
"""

import importlib.util
import json
import os
import re

N_WORDS = 4
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "goodhart", "worlds", "data")


def opening(sentence: str) -> str | None:
    words = [w for w in sentence.replace("_", " ").split() if re.search(r"[a-z0-9]", w)]
    if len(words) < N_WORDS + 2:  # a prompt must leave the sentence unfinished
        return None
    return " ".join(words[:N_WORDS])


def write(name: str, rows: list[dict]) -> None:
    with open(os.path.join(OUT, name), "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"{name}: {len(rows)} prompts")


def main() -> None:
    data = os.path.join(os.path.dirname(importlib.util.find_spec("gensim").origin), "test", "test_data")
    seen, movie = set(), []
    for line in open(os.path.join(data, "pang_lee_polarity.cor"), encoding="latin-1"):
        label, text = line.split(" ", 1)
        p = opening(text)
        if p and p not in seen:
            seen.add(p)
            movie.append({"prompt": p, "source": "pang_lee", "label": label.removeprefix("__label__")})
    for line in open(os.path.join(data, "alldata-id-10.txt"), encoding="latin-1"):
        review = line.split(" ", 1)[1]
        for sentence in re.split(r"\s[.!?]\s", review):
            p = opening(sentence)
            if p and p not in seen:
                seen.add(p)
                movie.append({"prompt": p, "source": "imdb10", "label": ""})
    write("movie_prompts.jsonl", movie)
    news, seen = [], set()
    for line in open(os.path.join(data, "lee_background.cor"), encoding="latin-1"):
        p = opening(line.lower())
        if p and p not in seen:
            seen.add(p)
            news.append({"prompt": p, "source": "lee_background", "label": ""})
    write("news_prompts.jsonl", news)


if __name__ == "__main__":
    main()
