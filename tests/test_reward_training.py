"""Bradley–Terry training on tiny locally built models: parameters move, loss falls, accuracy rises,
and checkpoints round-trip through save_pretrained / AutoModelForSequenceClassification."""

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from goodhart import make_pairs
from goodhart.config import RMTraining
from goodhart.reward.train import Comparisons, evaluate_comparisons, train_reward_model
from goodhart.scoring import score_pairs
from goodhart.worlds import smoke


def _random_texts(rng, B, K, length=8):
    words = smoke.NEUTRAL + smoke.POSITIVE + smoke.NEGATIVE
    return np.array([[" ".join(rng.choice(words, size=length)) for _ in range(K)] for _ in range(B)], dtype=object)


def _comparisons(texts, rng, max_pairs, noise=0.0):
    gold = np.array([smoke.gold([("", t) for t in row]) for row in texts])
    pairs = make_pairs(gold, rng, max_pairs, noise=noise)
    prompts = ["the film"] * len(pairs)
    return Comparisons(prompts, list(texts[pairs[:, 0], pairs[:, 1]]), list(texts[pairs[:, 0], pairs[:, 2]])), pairs


def test_training_moves_parameters_lowers_loss_and_beats_chance():
    rng = np.random.default_rng(0)
    train, _ = _comparisons(_random_texts(rng, 40, 6), rng, 600)
    val, _ = _comparisons(_random_texts(rng, 20, 6), rng, 300)
    model, tok = smoke.make_proxy(seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    acc_before = evaluate_comparisons(model, tok, val, max_length=32)["accuracy"]
    logged = []
    stats = train_reward_model(model, tok, train, RMTraining(lr=2e-3, epochs=3, batch_size=16, max_length=32), seed=0,
                               log=lambda **m: logged.append(m))
    after = model.state_dict()
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert not torch.equal(before["bert.encoder.layer.0.attention.self.query.weight"],
                           after["bert.encoder.layer.0.attention.self.query.weight"])
    assert stats["rm/loss_last"] < stats["rm/loss_first"] - 0.1
    assert len(logged) == stats["rm/steps"] and {"loss/bt", "reward/accuracy", "lr"} <= set(logged[0])
    after_eval = evaluate_comparisons(model, tok, val, max_length=32)
    acc_after = after_eval["accuracy"]
    assert acc_after > 0.7 and acc_after > acc_before + 0.1
    assert after_eval["correct"].shape == (len(val.prompts),) and after_eval["correct"].mean() == acc_after


def test_checkpoint_round_trip_keeps_scores(tmp_path):
    model, tok = smoke.make_proxy(seed=1)
    with torch.no_grad():
        model.classifier.weight.normal_()  # a non-default head must survive the round trip
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    ltok = AutoTokenizer.from_pretrained(tmp_path)
    texts = ["good film", "awful awful plot", "the cast was superb"]
    prompts = ["the movie"] * 3
    np.testing.assert_allclose(score_pairs(loaded, ltok, prompts, texts), score_pairs(model, tok, prompts, texts),
                               atol=1e-6)


def test_score_pairs_is_order_independent():
    """score_pairs sorts by length internally; results must come back in input order."""
    model, tok = smoke.make_proxy(seed=2)
    texts = ["good", "the film was very good and fun", "bad plot", "awful"]
    prompts = ["a"] * 4
    full = score_pairs(model, tok, prompts, texts, batch_size=2)
    single = [score_pairs(model, tok, [p], [t])[0] for p, t in zip(prompts, texts, strict=True)]
    np.testing.assert_allclose(full, single, atol=1e-5)


def test_bucketed_batches_cover_every_index_once_and_group_lengths():
    from goodhart.reward.train import bucketed_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=1000)
    batches = bucketed_batches(lengths, 8, rng)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000)) and all(len(b) <= 8 for b in batches)
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[rng.permutation(1000)[:8]]) for _ in range(100)])
    assert spread < 0.2 * random_spread


def test_linear_schedule_matches_transformers():
    """The hand-written schedule (avoids importing peft at CLI start) equals transformers' one, step by step."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    from goodhart.reward.train import linear_schedule

    lrs = []
    for make in (lambda o: linear_schedule(o, 7, 50), lambda o: get_linear_schedule_with_warmup(o, 7, 50)):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        sched, seen = make(opt), []
        for _ in range(55):
            seen.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        lrs.append(seen)
    assert lrs[0] == lrs[1] and max(lrs[0]) == 0.1 and lrs[0][0] == 0.0 and lrs[0][-1] == 0.0
