"""SPEC §6: ENS mean / WCO / UWO aggregation and WARM weight averaging."""

import numpy as np
import pytest
import torch

from goodhart import GoodhartError, aggregate, weight_average
from goodhart.scoring import score_pairs
from goodhart.worlds import smoke


def test_aggregate_hand_values():
    """Members [1, 2, 6] on one input: mean 3, min 1, population variance (4 + 1 + 9)/3 = 14/3,
    UWO(λ = 0.5) = 3 − 7/3 = 2/3."""
    s = np.array([[1.0], [2.0], [6.0]])
    assert aggregate(s, "mean")[0] == 3.0
    assert aggregate(s, "wco")[0] == 1.0
    assert aggregate(s, "uwo", lam=0.5)[0] == pytest.approx(2 / 3)
    assert aggregate(s, "uwo", lam=0.0)[0] == 3.0  # λ = 0 is the mean: the option is not ignored


def test_aggregate_orderings_random():
    s = np.random.default_rng(0).normal(size=(5, 7, 11))
    mean = aggregate(s, "mean")
    assert mean.shape == (7, 11)
    assert np.all(aggregate(s, "wco") <= mean) and np.all(aggregate(s, "uwo", lam=2.0) <= mean)
    assert np.all(aggregate(s, "uwo", lam=2.0) <= aggregate(s, "uwo", lam=1.0))


def test_aggregate_errors():
    with pytest.raises(GoodhartError, match="unknown aggregation"):
        aggregate(np.zeros((2, 3)), "median")
    with pytest.raises(GoodhartError, match="λ >= 0"):
        aggregate(np.zeros((2, 3)), "uwo", lam=-1)


def _perturbed_proxies(M):
    models = []
    for m in range(M):
        model, tok = smoke.make_proxy(seed=0)  # shared initialisation
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p, generator=torch.Generator().manual_seed(100 + m)))
        models.append(model)
    return models, tok


def test_weight_average_is_parameter_mean_with_head():
    models, _ = _perturbed_proxies(3)
    avg = weight_average(models)
    assert type(avg) is type(models[0]) and avg is not models[0]
    for name, t in avg.state_dict().items():
        members = torch.stack([m.state_dict()[name].double() for m in models])
        if t.is_floating_point():
            torch.testing.assert_close(t.double(), members.mean(0), atol=1e-6, rtol=0)
        else:
            assert torch.equal(t, models[0].state_dict()[name])
    assert not torch.equal(avg.classifier.weight, models[0].classifier.weight)  # the head is averaged too


def test_weight_average_weights():
    models, _ = _perturbed_proxies(2)
    only_second = weight_average(models, weights=[0.0, 3.0])
    torch.testing.assert_close(only_second.classifier.weight, models[1].classifier.weight)
    with pytest.raises(GoodhartError, match="non-negative weights"):
        weight_average(models, weights=[1.0, -1.0])


def test_linear_model_warm_equals_ens_mean():
    """For a model linear in its parameters, f(Σ w θ) = Σ w f(θ): WARM = ENS mean exactly."""
    torch.manual_seed(0)
    members = [torch.nn.Linear(5, 1) for _ in range(4)]
    x = torch.randn(10, 5)
    warm = weight_average(members)
    ens = aggregate(np.stack([m(x).detach().numpy()[:, 0] for m in members]), "mean")
    np.testing.assert_allclose(warm(x).detach().numpy()[:, 0], ens, atol=1e-6)


def test_warm_of_transformers_is_close_to_but_not_ens():
    models, tok = _perturbed_proxies(3)
    texts, prompts = ["good fun film", "awful dull plot", "the cast"], ["a", "b", "c"]
    warm = score_pairs(weight_average(models), tok, prompts, texts)
    ens = aggregate(np.stack([score_pairs(m, tok, prompts, texts) for m in models]), "mean")
    spread = np.stack([score_pairs(m, tok, prompts, texts) for m in models]).std(axis=0)
    gap = np.abs(warm - ens)
    assert np.all(gap < 0.2 * spread)  # close: within a fifth of the members' disagreement (shared init)
    assert gap.max() > 1e-4  # but not the ensemble: a nonlinear network's weight average is not its output mean


def test_weight_average_refuses_different_architectures():
    a, _ = smoke.make_proxy(seed=0)
    b, _ = smoke.make_proxy(seed=0)
    b.classifier = torch.nn.Linear(64, 2)
    with pytest.raises(GoodhartError, match="classifier.weight has shape"):
        weight_average([a, b])
    with pytest.raises(GoodhartError, match="is a Linear"):
        weight_average([a, torch.nn.Linear(2, 1)])


def test_pairs_encoded_once_score_as_each_pair_alone():
    """The suite tokenises its sets once for every member (EncodedPairs): batched, length-sorted, padded scores of
    pairs of unequal lengths equal each pair scored alone (no padding), in the pairs' own order, for two models."""
    from goodhart.scoring import encode_for_scoring, score_encoded

    models = [smoke.make_proxy(seed=s) for s in (0, 1)]
    tok = models[0][1]
    prompts = ["a", "the film was", "b", "it", "one more prompt here"]
    texts = ["good", "truly dreadful in every way", "ok fine", "a long and winding review of nothing", "x"]
    encoded = encode_for_scoring(tok, prompts, texts, batch_size=2, max_length=32)
    assert len(encoded.batches) == 3
    for model, _ in models:
        alone = np.array([score_pairs(model, tok, [p], [t], max_length=32)[0] for p, t in zip(prompts, texts, strict=True)])
        np.testing.assert_allclose(score_encoded(model, encoded), alone, rtol=1e-5, atol=1e-5)
    assert not np.allclose(score_encoded(models[0][0], encoded), score_encoded(models[1][0], encoded))
