"""The lab world: its text, judge, pretrained policy, learned gold and proxies. The fast tier builds the
tiny variant (lab-tiny, seconds); the slow tier builds the real one from scratch."""

import json

import numpy as np
import pytest
import torch

from goodhart.worlds.lab import SPECS, gold_dir, lab_facts, lab_world, world_dir
from goodhart.worlds.lab_corpus import (
    Judge,
    clean_wiki,
    openings,
    paragraphs,
    prompt_sets,
    repetition,
    split_of,
    unknown_share,
)

from helpers import goodhart


def test_repetition_unknown_words_and_judge_by_hand():
    """repetition = 1 − distinct/total words: 'good good bad' → 1 − 2/3; case and punctuation ignored.
    unknown_share: 'good zorp' with known {good} → 1/2. The judge is compound − repetition − unknown share:
    'good good bad' (all known) = compound − 1/3 exactly."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    assert repetition("good good bad") == pytest.approx(1 / 3)
    assert repetition("Good, good. GOOD!") == pytest.approx(2 / 3)
    assert repetition("one") == 0.0 and repetition("") == 0.0
    known = {"good", "bad", "a", "fine", "day"}
    assert unknown_share("good zorp", known) == 0.5 and unknown_share("...", known) == 1.0
    judge = Judge(known)
    compound = SentimentIntensityAnalyzer().polarity_scores("good good bad")["compound"]
    assert judge([("p", "good good bad")]) == [pytest.approx(compound - 1 / 3)]
    assert judge([("p", "a fine day")])[0] > judge([("p", "fine fine fine fine")])[0]
    assert judge([("p", "a fine day")])[0] > judge([("p", "a fine dax")])[0]


def test_wiki_markup_is_stripped_to_prose():
    markup = ("<title>X</title><text>{{Infobox|a=b}}\n== Heading ==\n* a list item that is long enough to pass the "
              "word count easily\nThe [[French Revolution|revolution]] began in ''1789'' and changed the politics of "
              "the whole of Europe for a century.&lt;ref&gt;Some book, p. 3&lt;/ref&gt;\n</text>")
    assert clean_wiki(markup) == ["The revolution began in 1789 and changed the politics of the whole of Europe "
                                  "for a century."]


def test_corpus_splits_are_disjoint_and_prompts_are_openings():
    texts = paragraphs()
    assert len(texts) > 4000 and sum(map(len, texts)) > 2_000_000
    splits = {t: split_of(t) for t in texts}
    by_split = {name: [t for t, s in splits.items() if s == name] for name in ("world", "gold")}
    world, gold = prompt_sets(by_split)
    assert len(world) > 900 and len(gold) > 600 and not set(world) & set(gold)
    assert all(len(p.split()) == 5 for p in world[:50])
    assert openings(["Short one. The first five words of this sentence are kept here."]) == ["The first five words of"]


@pytest.fixture(scope="module")
def tiny():
    return lab_world("lab-tiny")


def test_tiny_lab_world_builds_a_pretrained_policy_and_a_gold_better_than_chance(tiny):
    """The policy's held-out next-token loss is below a random init's; the gold RM orders held-out judge
    labels better than a coin (the real world's margins are asserted in the slow tier)."""
    facts = lab_facts("lab-tiny")
    assert facts["heldout_loss"] < facts["heldout_loss_init"] - 0.3
    assert facts["heldout_agreement"] > 0.55 and facts["val_pairs"] >= 50
    scores = tiny.gold_scores(["The film was"] * 2, [" good and fine", " bad bad bad bad"])
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert (gold_dir("lab-tiny") / "model.safetensors").is_file() and gold_dir("lab-tiny").parent == world_dir("lab-tiny")


def test_lab_proxies_are_cut_from_the_pretrained_body_and_are_smaller_than_the_gold(tiny):
    from transformers import LlamaForSequenceClassification

    from goodhart.worlds.family import count_params, shrink

    proxy, tok = tiny.make_proxy(0)
    gold = LlamaForSequenceClassification.from_pretrained(gold_dir("lab-tiny"))
    assert count_params(proxy)[0] < count_params(gold)[0]
    policy = tiny.policy.model.layers[0].self_attn.q_proj.weight
    spec = SPECS["lab-tiny"]
    assert torch.equal(proxy.model.layers[0].self_attn.q_proj.weight, policy[: spec.proxy_hidden, : spec.proxy_hidden])
    small = shrink(proxy, layers=1, hidden=16, intermediate=16)
    enc = tok(["a b"], ["c d"], return_tensors="pt")
    assert small(**enc).logits.shape == (1, 1) and small.config.num_key_value_heads == small.config.num_attention_heads


def test_goodhart_run_on_the_tiny_lab_world_with_its_rl_leg(tmp_path):
    """Best-of-n curves of the family, then the RL leg against the weakest and the main proxy on the run's
    prompts: a policy trained and saved per leg (its KL to the initial policy above 0 at the last
    evaluation), its rows in the run's results in the pool's normalisation, one sentence per leg."""
    res = goodhart("run", "--world", "lab-tiny", "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    bon = [r for r in rows if r.get("method") == "bon"]
    assert {r["world"] for r in bon} == {"lab-tiny"} and {r["reward_model"] for r in bon} >= {"proxy", "gold"}
    rl = [r for r in rows if r.get("study") == "rl"]
    weakest = min((r for r in bon if r["reward_model"] != "gold"), key=lambda r: r["rm_pairs"])["reward_model"]
    assert {r["reward_model"] for r in rl} == {weakest, "proxy"}
    for name in (weakest, "proxy"):
        leg = sorted((r for r in rl if r["reward_model"] == name), key=lambda r: r["step"])
        assert [r["step"] for r in leg] == [0, 4, 8] and leg[-1]["kl"] > 0 and leg[0]["kl"] == 0
        top = next(r for r in bon if r["reward_model"] == name)
        assert leg[0]["gold_shift"] == top["gold_shift"] and leg[0]["proxy_scale"] == top["proxy_scale"]
        assert (tmp_path / "r" / "rl" / name / "policy" / "model.safetensors").is_file()
        assert f"RLOO against {name} (" in res.stdout
    assert (tmp_path / "r" / "plots" / "bon.png").is_file()


@pytest.mark.slow
def test_lab_world_builds_from_scratch(tmp_path, monkeypatch):
    """The real lab world from an empty cache: the policy's held-out loss is ≥ 2 nats below a random init's
    (a pretrained LM, not noise), the gold agrees with its judge on held-out prompts' pairs ≥ 0.65, and it has
    learned the judge's repetition term from its repetition-favoured samples: a loop of one word scores below
    the policy's plain samples (the gold trained on plain samples alone scored such loops above them)."""
    monkeypatch.setenv("GOODHART_CACHE", str(tmp_path))
    world = lab_world("lab")
    facts = lab_facts("lab")
    assert facts["heldout_loss"] < facts["heldout_loss_init"] - 2.0
    assert facts["heldout_agreement"] >= 0.65 and facts["val_pairs"] >= 1000
    assert len(world.prompts) >= 1000
    assert facts["repeat_samples_per_prompt"] == 12 and facts["heldout_agreement_all"] >= 0.65
    prompts = world.prompts[:16]
    plain = world.gold_scores(prompts, [" the city of the state and its people."] * 16)
    looped = world.gold_scores(prompts, [" as" * 24] * 16)
    assert looped.mean() < plain.mean() - 1.0
