"""Gold scores are cached by (gold, prompt, completion): a rerun never re-scores; an LLM judge as gold."""

import numpy as np
import pytest

from goodhart import GoodhartError
from goodhart.worlds import base
from goodhart.worlds.smoke import save_smoke_models, smoke_world


def test_gold_cache_hit_on_a_rerun():
    world = smoke_world()
    prompts, comps = ["a", "b", "a"], ["good good", "bad", "nice"]
    first = world.gold_scores(prompts, comps)
    assert world.gold_calls == 3
    base._TABLES.clear()  # as in a new process: read back from disk
    again = smoke_world()
    assert np.array_equal(again.gold_scores(prompts, comps), first) and again.gold_calls == 0
    again.gold_scores(["a", "c"], ["good good", "good"])
    assert again.gold_calls == 1  # only the new (prompt, completion)


def test_llm_judge_gold_is_batched_and_cached(tmp_path):
    from goodhart.worlds.judge import make_llm_judge

    paths = save_smoke_models(tmp_path)
    judge = make_llm_judge(paths["policy"], rubric="movie", yes=" good", no=" bad", batch_size=2)
    pairs = [("the film", "great fun"), ("the film", "awful"), ("a plot", "nice"), ("a plot", "")]
    scores = judge(pairs)
    assert scores.shape == (4,) and np.isfinite(scores).all()
    assert np.allclose(scores[:2], [judge(pairs[:1])[0], judge(pairs[1:2])[0]], atol=1e-5)  # padding is harmless
    with pytest.raises(GoodhartError, match="one known token"):
        make_llm_judge(paths["policy"], rubric="x", yes=" notaword")
