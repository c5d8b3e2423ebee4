"""BOND's anchor and policy rollouts: each drawn from its own seeded generator (inside `generate`, by
SeededSampler, or in the fast engine's decode loop), side by side in two threads or one after the other —
the same samples either way; the fast engine's rollouts are generate's, token for token."""

import threading

import numpy as np
import pytest
import torch

from goodhart.config import load_policy_train_config
from goodhart.policy import train
from goodhart.sampling.engines import fast_policy_rollout
from goodhart.sampling.rollout import encode_prompts, rollout
from goodhart.worlds import load_world


@pytest.fixture(scope="module")
def setup():
    cfg = load_policy_train_config(world="smoke", overrides=["reward_model=unused", "method=jbond"])
    world = load_world(cfg)
    s = train.Setup(cfg, world, None, torch.device("cpu"))
    models = train.build_models(cfg, world, s.device)
    with torch.no_grad():  # anchor ≠ policy, as after some J-BOND steps
        for p in models.anchor.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return s, models


def _draw(s, models, concurrent, monkeypatch):
    monkeypatch.setattr(s.cfg, "concurrent_sampling", concurrent)
    threads, original = set(), train.sample

    def recorded(*a, **kw):
        threads.add(threading.get_ident())
        return original(*a, **kw)

    monkeypatch.setattr(train, "sample", recorded)
    prompts = s.world.prompts[:4]
    torch.manual_seed(123)
    out = train.sample_both(s, [(models.anchor, prompts, 2), (models.policy, prompts, 3)])
    monkeypatch.setattr(train, "sample", original)
    return out, threads


@pytest.mark.parametrize("engine", ["fast", "hf"])
def test_concurrent_sampling_gives_the_samples_of_sequential_sampling(setup, monkeypatch, engine):
    s, models = setup
    monkeypatch.setattr(s.cfg.sampling, "engine", engine)
    assert train.fast_sampling(s, models.policy) == (engine == "fast")
    saved = torch.get_num_threads()
    torch.set_num_threads(2)  # the threaded path needs ≥ 2 intra-op threads to split
    try:
        side_by_side, threads = _draw(s, models, True, monkeypatch)
        assert torch.get_num_threads() == 2  # restored after the threads finish
        one_by_one, main_only = _draw(s, models, False, monkeypatch)
    finally:
        torch.set_num_threads(saved)
    assert len(threads) == 2 and threading.get_ident() not in threads  # really drawn in two worker threads
    assert main_only == {threading.get_ident()}
    for a, b in zip(side_by_side, one_by_one, strict=True):
        assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.valid_mask, b.valid_mask)
        assert a.texts == b.texts
    assert [len(r.texts) for r in side_by_side] == [8, 12]
    assert side_by_side[0].texts != side_by_side[1].texts[:8]  # anchor and policy draw apart


def test_seeded_sampler_draws_the_models_next_token_law(setup):
    """First tokens of 4,000 seeded rollouts of one prompt against softmax of the model's logits."""
    s, models = setup
    tok, model = s.world.tokenizer, models.policy
    enc = encode_prompts(tok, [s.world.render(s.world.prompts[0])] * 4000, s.world.add_special_tokens, s.device)
    ro = rollout(model, tok, enc, 1, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        probs = torch.softmax(model(**{k: v[:1] for k, v in enc.items()}).logits[0, -1].float(), -1).numpy()
    counts = np.bincount(ro.input_ids[:, -1].numpy(), minlength=len(probs))
    expected = 4000 * probs
    big = expected >= 20  # a chi-square over the tokens expected often enough, the rest pooled
    stat = (((counts[big] - expected[big]) ** 2) / expected[big]).sum()
    rest = counts[~big].sum(), expected[~big].sum()
    stat += (rest[0] - rest[1]) ** 2 / max(rest[1], 1e-9)
    dof = int(big.sum())
    assert stat < dof + 5 * np.sqrt(2 * dof) + 10  # far above the mean dof: a wrong law fails by orders
    again = rollout(model, tok, enc, 1, generator=torch.Generator().manual_seed(5))
    other = rollout(model, tok, enc, 1, generator=torch.Generator().manual_seed(6))
    assert torch.equal(again.input_ids, ro.input_ids) and not torch.equal(other.input_ids, ro.input_ids)


def test_token_logprobs_equal_the_full_forward_log_softmax(setup):
    """token_logprobs runs the LM head on the completion's positions only; the log-probabilities must be
    those of the whole forward pass (left-padded prompts of different lengths, EOS-masked completions)."""
    from goodhart.sampling.rollout import token_logprobs

    s, models = setup
    prompts = [s.world.prompts[0], s.world.prompts[1] + " and some more words to pad the others"]
    enc = encode_prompts(s.world.tokenizer, [s.world.render(p) for p in prompts for _ in range(3)],
                         s.world.add_special_tokens, s.device)
    with torch.no_grad():
        ro = rollout(models.anchor, s.world.tokenizer, enc, 12, generator=torch.Generator().manual_seed(5))
        fast = token_logprobs(models.policy, ro, temperature=0.7)
        pos = (ro.attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        logits = models.policy(input_ids=ro.input_ids, attention_mask=ro.attention_mask, position_ids=pos).logits
        naive = torch.log_softmax(logits[:, ro.prompt_len - 1 : -1].float() / 0.7, dim=-1)
        naive = naive.gather(-1, ro.input_ids[:, ro.prompt_len :, None]).squeeze(-1) * ro.valid_mask
    assert fast.shape == (6, ro.input_ids.shape[1] - ro.prompt_len) and ro.valid_mask.sum() > 6
    assert (~ro.valid_mask).any()  # some masked positions are covered
    torch.testing.assert_close(fast, naive, rtol=0, atol=1e-5)
    assert fast[ro.valid_mask].abs().min() > 0  # real log-probabilities, not zeros


def test_shared_prompt_logprobs_match_the_full_forward_and_its_gradient(setup):
    """BOND's stacked batch (one best anchor sample per prompt, then k policy samples per prompt, left-padded
    prompts of different lengths): computing each distinct prompt once must give the log-probabilities and
    the parameter gradient of one forward over the whole rows."""
    from goodhart.sampling.rollout import shared_prompt_logits, token_logprobs

    s, models = setup
    prompts = [s.world.prompts[0], s.world.prompts[1] + " and some more words to pad the others", s.world.prompts[2]]
    enc = lambda k: encode_prompts(s.world.tokenizer, [s.world.render(p) for p in prompts for _ in range(k)],  # noqa: E731
                                   s.world.add_special_tokens, s.device)
    best = rollout(models.anchor, s.world.tokenizer, enc(1), 12, generator=torch.Generator().manual_seed(1))
    own = rollout(models.policy, s.world.tokenizer, enc(2), 9, generator=torch.Generator().manual_seed(2))
    ro = train.stack_rollouts([best, own], s.world.tokenizer.pad_token_id)
    assert ro.valid_mask.sum() > 9 and (~ro.valid_mask).any()
    params = [p for p in models.policy.parameters() if p.requires_grad]
    out = {}
    for share in (True, False):
        logp = token_logprobs(models.policy, ro, temperature=0.7, share_prompts=share)
        grads = torch.autograd.grad((logp * torch.linspace(-1, 1, logp.shape[1])).sum(), params)
        out[share] = logp.detach(), grads
    torch.testing.assert_close(out[True][0], out[False][0], rtol=0, atol=1e-5)
    for a, b in zip(out[True][1], out[False][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert sum(g.abs().sum() for g in out[True][1]) > 0  # a real gradient, not zeros
    # the default shares where the repeated prompt tokens are ≥ a quarter of all tokens: on these 9 rows of
    # 12 + 12 tokens 6 rows repeat a prompt (72 ≥ 54 tokens); on rows 0, 1, 3 one row does (12 < 18)
    torch.testing.assert_close(token_logprobs(models.policy, ro, temperature=0.7).detach(), out[True][0], rtol=0, atol=0)
    few = _rows(ro, [0, 1, 3])
    with torch.no_grad():
        torch.testing.assert_close(token_logprobs(models.policy, few), token_logprobs(models.policy, few, share_prompts=False),
                                   rtol=0, atol=0)
        assert shared_prompt_logits(models.policy, few) is not None  # a repeat exists: only the rule said no
    with torch.no_grad():  # three distinct prompts among nine rows: the shared path is the one taken
        assert shared_prompt_logits(models.policy, ro).shape[:2] == ro.valid_mask.shape
        assert shared_prompt_logits(models.policy, _rows(own, [0, 2, 4])) is None  # no repeat: None


def _rows(ro, idx):
    from goodhart.sampling.rollout import Rollout

    return Rollout(ro.input_ids[idx], ro.attention_mask[idx], ro.prompt_len, ro.valid_mask[idx], [])


def test_fast_policy_rollout_is_generates_rollout_for_the_same_generator(setup):
    """Same prompts, same generator: the fast engine's Rollout (prompt ids left-padded to one length,
    completion ids, attention and completion masks, texts) equals generate's with SeededSampler when it
    keeps finished rows (one uniform per row and step, as generate draws); dropping them keeps every
    row's prompt and its completion's form (up to its first EOS, pad after)."""
    s, models = setup
    tok, world = s.world.tokenizer, s.world
    texts = [world.render(p) for p in world.prompts[:4] for _ in range(3)]
    enc = encode_prompts(tok, texts, world.add_special_tokens, s.device)
    want = rollout(models.policy, tok, enc, 10, 1.0, 1.0, torch.Generator().manual_seed(9))
    got = fast_policy_rollout(models.policy, tok, texts, world.add_special_tokens, 10,
                              generator=torch.Generator().manual_seed(9), drop_finished=False)
    assert got.prompt_len == want.prompt_len
    assert torch.equal(got.input_ids, want.input_ids) and torch.equal(got.attention_mask, want.attention_mask)
    assert torch.equal(got.valid_mask, want.valid_mask) and got.texts == want.texts
    assert not want.valid_mask.all()  # some row finished early: the check covers the pad after EOS
    dropped = fast_policy_rollout(models.policy, tok, texts, world.add_special_tokens, 10,
                                  generator=torch.Generator().manual_seed(9))
    assert torch.equal(dropped.input_ids[:, : want.prompt_len], enc["input_ids"])
    comp, valid = dropped.input_ids[:, want.prompt_len :], dropped.valid_mask
    assert torch.equal(dropped.attention_mask[:, want.prompt_len :], valid.long())
    ends = valid.sum(1) - 1
    finished = ends < comp.shape[1] - 1
    assert (comp[finished, ends[finished]] == tok.eos_token_id).all()  # a completion stops at its EOS
    assert (comp[~valid] == tok.pad_token_id).all()


@pytest.mark.parametrize("drop_finished", [True, False])
def test_fast_rollouts_log_probabilities_are_the_models(setup, drop_finished):
    """The fast engine's Rollout carries each drawn token's log π under the model at temperature 1, whatever
    temperature drew it (evaluation's KL reads it instead of a forward pass): equal to token_logprobs, 0 past
    EOS."""
    from goodhart.sampling.rollout import token_logprobs

    s, models = setup
    world = s.world
    texts = [world.render(p) for p in world.prompts[:4] for _ in range(3)]
    ro = fast_policy_rollout(models.policy, world.tokenizer, texts, world.add_special_tokens, 10, temperature=0.7,
                             generator=torch.Generator().manual_seed(3), drop_finished=drop_finished)
    with torch.no_grad():
        want = token_logprobs(models.policy, ro)
    assert not ro.valid_mask.all() and (ro.logprobs[~ro.valid_mask] == 0).all()
    torch.testing.assert_close(ro.logprobs, want, rtol=0, atol=1e-4)
    assert want[ro.valid_mask].std() > 0.1  # distinct tokens' log-probabilities, not one value repeated


def test_bond_logs_kl_from_its_fixed_anchor_without_a_reference_forward(monkeypatch):
    """Fixed-anchor BOND (backward, Jeffreys): the anchor is π_ref, so the logged KL of the policy's samples
    comes from the anchor's log-probabilities; π_ref is not run again, and the KL is the one π_ref gives."""
    from goodhart.policy.kl import kl_per_sequence
    from goodhart.reward.load import RewardModel

    cfg = load_policy_train_config(world="smoke", overrides=["reward_model=unused", "method=bond",
                                                             "bond_divergence=backward"])
    world = load_world(cfg)
    s = train.Setup(cfg, world, RewardModel([world.make_proxy(0)], name="untrained"), torch.device("cpu"))
    m = train.build_models(cfg, world, s.device)
    with torch.no_grad():  # the policy after some steps: KL > 0
        for p in m.policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    seen, original = [], train.logprobs

    def recorded(s_, model, ro, grad=True):
        seen.append(model)
        out = original(s_, model, ro, grad)
        recorded.last[id(model)] = (ro, out)
        return out

    recorded.last = {}
    monkeypatch.setattr(train, "logprobs", recorded)
    torch.manual_seed(0)
    _, stats = train.bond_batch(s, m, world.prompts[:4])
    assert not any(model is m.ref for model in seen) and any(model is m.anchor for model in seen)
    ro, _ = recorded.last[id(m.anchor)]
    with torch.no_grad():
        kl = kl_per_sequence(original(s, m.policy, ro, grad=False), original(s, m.ref, ro, grad=False), ro.valid_mask)
    assert stats["kl/k3"] == pytest.approx(kl["k3"].mean().item(), rel=1e-4) and stats["kl/k3"] > 0
