"""`goodhart rm train / warm / ensemble / eval` on the smoke world, and their one-line errors."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from goodhart.reward.load import load_reward_model

from helpers import assert_one_line_error, goodhart

FAST = ["--set", "rm.epochs=2", "--set", "prompts=24"]


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """A shared initial run, then two members fine-tuned from it with different lr / dropout / seed."""
    root = tmp_path_factory.mktemp("rm")
    res = goodhart("rm", "train", "--world", "smoke", "--out", str(root / "init"), *FAST, "--set", "rm.label_noise=0.25")
    assert res.returncode == 0, res.stderr
    for name, lr, dropout, seed in (("m1", 1e-3, 0.05, 1), ("m2", 3e-3, 0.1, 2)):
        res = goodhart("rm", "train", "--world", "smoke", "--out", str(root / name), *FAST,
                       "--set", f"init_from={root / 'init'}", "--set", f"rm.lr={lr}", "--set", f"dropout={dropout}",
                       "--set", f"seed={seed}", "--set", "rm.label_noise=0.25")
        assert res.returncode == 0, res.stderr
    return root


def test_rm_train_writes_run_and_records_flips(members):
    run = members / "init"
    row = json.loads((run / "results.jsonl").read_text().splitlines()[0])
    assert row["study"] == "rm" and row["label_noise"] == 0.25 and row["val_acc"] > 0.5
    pairs = [json.loads(line) for line in open(run / "pairs.jsonl")]
    train = [p for p in pairs if p["split"] == "train"]
    assert sum(p["flipped"] for p in train) == round(0.25 * len(train))
    assert not any(p["flipped"] for p in pairs if p["split"] == "val")
    assert 0 <= row["flipped_memorised"] <= 1
    model = AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert model.config.num_labels == 1


def test_member_hyperparameters_took_effect(members):
    m1 = AutoModelForSequenceClassification.from_pretrained(members / "m1" / "model")
    assert m1.config.hidden_dropout_prob == 0.05 and m1.config.attention_probs_dropout_prob == 0.05
    init = AutoModelForSequenceClassification.from_pretrained(members / "init" / "model")
    assert not torch.equal(init.classifier.weight, m1.classifier.weight)  # fine-tuned from init, and moved


def test_warm_and_ensemble_commands(members, tmp_path):
    res = goodhart("rm", "warm", str(members / "m1"), str(members / "m2"), "--out", str(tmp_path / "warm"))
    assert res.returncode == 0, res.stderr
    warm = AutoModelForSequenceClassification.from_pretrained(tmp_path / "warm")
    m1 = AutoModelForSequenceClassification.from_pretrained(members / "m1" / "model")
    m2 = AutoModelForSequenceClassification.from_pretrained(members / "m2" / "model")
    torch.testing.assert_close(warm.classifier.weight, (m1.classifier.weight + m2.classifier.weight) / 2)
    res = goodhart("rm", "ensemble", str(members / "m1"), str(members / "m2"), "--method", "wco",
                   "--out", str(tmp_path / "ens"))
    assert res.returncode == 0, res.stderr
    ens = load_reward_model(tmp_path / "ens")
    prompts, texts = ["the film"] * 3, ["good fun", "awful", "the cast"]
    per_member = ens.member_scores(prompts, texts)
    np.testing.assert_allclose(ens.score(prompts, texts), per_member.min(axis=0))


def test_rm_eval_reports_clean_and_flipped(members, tmp_path):
    res = goodhart("rm", "eval", str(members / "m1"), "--data", str(members / "init" / "pairs.jsonl"),
                   "--out", str(tmp_path / "ev"))
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in open(tmp_path / "ev" / "results.jsonl")]
    assert {r["subset"] for r in rows} == {"clean", "flipped"}


def test_rm_train_from_preference_file(tmp_path):
    rng = np.random.default_rng(0)
    pos, neg = ["good", "great", "superb", "fun"], ["bad", "awful", "dull", "weak"]
    lines = [json.dumps({"prompt": "the film", "chosen": f"{rng.choice(pos)} {rng.choice(pos)} plot",
                         "rejected": f"{rng.choice(neg)} {rng.choice(neg)} plot"}) for _ in range(120)]
    data = tmp_path / "prefs.jsonl"
    data.write_text("\n".join(lines) + "\n")
    res = goodhart("rm", "train", "--world", "smoke", "--set", f"data={data}", "--set", "rm.epochs=3",
                   "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    row = json.loads((tmp_path / "r" / "results.jsonl").read_text())
    assert row["val_acc"] > 0.9  # an easy, clean preference set is learned


def test_rm_errors(members, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": "b"}\n')
    assert_one_line_error(goodhart("rm", "train", "--world", "smoke", "--set", f"data={bad}", "--out", str(tmp_path / "x")),
                           "bad.jsonl:2: preference row lacks string field(s) rejected")
    assert not (tmp_path / "x").exists()
    assert_one_line_error(goodhart("rm", "warm", str(members / "m1"), "--out", str(tmp_path / "w")), "at least 2")
    assert_one_line_error(goodhart("rm", "ensemble", str(members / "m1"), str(tmp_path), "--out", str(tmp_path / "e")),
                           "is not a reward-model checkpoint")
    assert_one_line_error(goodhart("rm", "train", "--world", "smoke", "--set", "rm.label_noise=0.6"), "rm.label_noise")


def test_preferences_from_a_dataset_directory(tmp_path):
    from goodhart import GoodhartError
    from goodhart.reward.data import read_preferences

    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps({"prompt": "p", "chosen": f"good {i}", "rejected": "bad", "flipped": i == 3}) + "\n"
                for i in range(6)))
    data, flipped = read_preferences(str(tmp_path))
    assert len(data) == 6 and data.chosen[2] == "good 2" and flipped.tolist() == [False] * 3 + [True] + [False] * 2
    with pytest.raises(GoodhartError, match="could not load preference dataset"):
        read_preferences("no/such-dataset")


def test_checkpoints_carry_a_model_card(members, tmp_path):
    card = (members / "m1" / "model" / "README.md").read_text()
    assert "library_name: transformers" in card and "reward-model" in card
    for field in ("goodhart version", "base model", "trained on", "label noise ρ", "validation accuracy",
                  "config sha256"):
        assert f"| {field} |" in card, field
    res = goodhart("rm", "warm", str(members / "m1"), str(members / "m2"), "--weights", "1,3", "--out", str(tmp_path / "w"))
    assert res.returncode == 0, res.stderr
    warm = (tmp_path / "w" / "README.md").read_text()
    assert "| WARM members |" in warm and "0.250, 0.750" in warm
