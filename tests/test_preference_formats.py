"""Preference data in the formats TRL users have: standard strings, conversational messages, Parquet."""

import json

import pandas as pd
import pytest

from goodhart import GoodhartError
from goodhart.reward.data import normalise_preference, read_preferences

U = {"role": "user", "content": "Review the film."}


def test_conversational_rows_become_text_pairs():
    implicit = {"chosen": [U, {"role": "assistant", "content": "Lovely."}],
                "rejected": [U, {"role": "assistant", "content": "Dull."}]}
    row = normalise_preference(implicit)
    assert row["prompt"] == "user: Review the film." and row["chosen"] == "assistant: Lovely."
    explicit = {"prompt": [U], "chosen": [{"role": "assistant", "content": "A"}],
                "rejected": [{"role": "assistant", "content": "B"}]}
    assert normalise_preference(explicit)["prompt"] == "user: Review the film."
    assert normalise_preference({"prompt": "p", "chosen": "a", "rejected": "b"})["chosen"] == "a"
    assert normalise_preference({"prompt": "p", "chosen": "a"}) is None


def test_jsonl_and_parquet_files(tmp_path):
    rows = [{"chosen": [U, {"role": "assistant", "content": f"good {i}"}],
             "rejected": [U, {"role": "assistant", "content": f"bad {i}"}]} for i in range(5)]
    conv = tmp_path / "conv.jsonl"
    conv.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data, flipped = read_preferences(str(conv))
    assert len(data) == 5 and data.chosen[0] == "assistant: good 0" and not flipped.any()
    pq = tmp_path / "prefs.parquet"
    pd.DataFrame([{"prompt": f"p{i}", "chosen": "yes", "rejected": "no", "flipped": i == 0} for i in range(6)]
                 ).to_parquet(pq)
    data, flipped = read_preferences(str(pq))
    assert data.prompts[:2] == ["p0", "p1"] and flipped.tolist() == [True] + [False] * 5
    with pytest.raises(GoodhartError, match="does not exist"):
        read_preferences(str(tmp_path / "none.parquet"))
