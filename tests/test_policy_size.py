"""Gao's policy-size axis: lab-small is a smaller policy pretrained on the same text with the lab world's
tokenizer, under the same gold and proxy family; `goodhart claims --smaller-policy` compares two studies of
the same grid in raw gold units (each pool standardised on its own policy's samples)."""

import subprocess
import sys
from pathlib import Path

import pytest

from goodhart.commands.size_claims import policy_size_rows
from goodhart.config import load_study_config
from goodhart.runs import read_jsonl

from helpers import goodhart

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "configs"


def _study(world: str, scale: float, peak: float, fall: float, rl_fall: float, peak_n: int = 64) -> list[dict]:
    """A study's rows: the oracle's pool facts, two seeds of one (full, 512) Best-of-n cell whose gold (in pool
    sd) peaks at `peak` and falls `fall` ± 0.05, a BoN curve up to n = 1024, and two RLOO cells."""
    rows = [{"study": "study_cell", "cell": "oracle", "aggregation": "gold", "method": "bon", "world": world,
             "gold_shift": 0.0, "gold_scale": scale, "policy_params": 1_800_000 if world == "lab" else 900_000}]
    for s in (0, 1):
        cell = f"full-n512-rho0-s{s}"
        rows += [{"study": "study", "cell": cell, "method": "bon", "aggregation": "single", "n": n, "kl": n / 100,
                  "rm_size": "full", "data_size": 512, "label_noise": 0.0, "seed": s} for n in (1, 64, 1024)]
        rows.append({"study": "study_cell", "cell": cell, "method": "bon", "aggregation": "single", "rm_size": "full",
                     "data_size": 512, "label_noise": 0.0, "seed": s, "rm_params": 1000, "peak_n": peak_n,
                     "peak_gold": peak, "peak_gold_lo": peak - 0.05, "peak_gold_hi": peak + 0.05,
                     "fall": fall, "fall_lo": fall - 0.05, "fall_hi": fall + 0.05})
        rows.append({"study": "study_cell", "method": "rloo", "kl_penalty": 0.0, "rm_size": "full", "data_size": 512,
                     "seed": s, "peak_step": 40, "final_step": 90, "fall": rl_fall, "fall_lo": rl_fall - 0.05,
                     "fall_hi": rl_fall + 0.05})
    return rows


def test_policy_size_rows_compare_in_raw_gold_and_need_both_past_their_peak():
    # the same fall in pool sd (0.5), but the larger policy's pool sd is half the smaller's: in raw gold it
    # falls 0.25 against 0.5, so "about as much" is contradicted; its peak gain (raw 0.5 vs 1.0) is smaller
    got = {r["claim"].split(" (")[0]: r for r in policy_size_rows(_study("lab", 0.5, 1.0, 0.5, 0.4),
                                                                 _study("lab-small", 1.0, 1.0, 0.5, 0.2))}
    gain = got["a larger policy gains less gold from Best-of-n"]
    assert gain["verdict"] == "reproduced" and "-0.500" in gain["measured"] and "lab (1.80M)" in gain["measured"]
    bon = got["≈ a larger policy overoptimises about as much under Best-of-n"]
    assert bon["verdict"] == "contradicted" and "-0.250" in bon["measured"] and "2/2 and 2/2" in bon["regime"]
    rl = got["≈ a larger policy overoptimises about as much under RL"]  # 0.2 vs 0.2 raw: within ±0.1
    assert rl["verdict"] == "reproduced" and "+0.000" in rl["measured"]
    # same scale, same falls → the BoN row is an equivalence; a pool whose gold peaks at its largest n → not reached
    same = {r["claim"].split(" (")[0]: r for r in policy_size_rows(_study("lab", 1.0, 1.0, 0.5, 0.2),
                                                                  _study("lab-small", 1.0, 1.2, 0.5, 0.2))}
    assert same["≈ a larger policy overoptimises about as much under Best-of-n"]["verdict"] == "reproduced"
    rising = policy_size_rows(_study("lab", 1.0, 1.0, 0.0, 0.2), _study("lab-small", 1.0, 1.0, 0.5, 0.2, peak_n=1024))
    row = next(r for r in rising if "under Best-of-n" in r["claim"])
    assert row["verdict"] == "not reached" and "2/2 and 0/2" in row["regime"]
    old = [r for r in _study("lab", 1.0, 1.0, 0.5, 0.2) if r.get("aggregation") != "gold"]  # no pool facts
    assert {r["verdict"] for r in policy_size_rows(old, _study("lab-small", 1.0, 1.0, 0.5, 0.2))} == {"not measured"}


# the study-lab-small grid at lab-tiny size (lab-tiny-small: a 1 × 32 × 64 policy under lab-tiny's gold)
TINY = ["data.train_prompts=32", "data.eval_prompts=4", "data.eval_samples_per_prompt=64", "bon.bootstrap=20",
        "grid.rm_sizes={s: {layers: 1, hidden: 16, intermediate: 8, lr: 3.0e-3}, full: {lr: 3.0e-3}}",
        "grid.data_sizes=[32, 128]", "grid.seeds=[0, 1]", "policy.data_sizes=[32]", "policy.seeds=[0, 1]",
        "policy.settings={steps: 4, lr: 3.0e-3, batch_prompts: 4, samples_per_prompt: 2, eval_every: 2, "
        "eval_prompts: 4, eval_samples_per_prompt: 4, checkpoint_every: 4}"]


def test_study_lab_small_config_shares_the_gold_and_compares_policy_sizes(tmp_path):
    from goodhart.commands.study import run_study
    from goodhart.worlds.lab import lab_world

    full = load_study_config(CONFIGS / "study-lab-small.yaml")
    assert full.world == "lab-small" and len(full.grid.seeds) >= 5 and max(full.grid.data_sizes) >= 8192
    big, small = lab_world("lab-tiny"), lab_world("lab-tiny-small")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small.policy) < count(big.policy)
    assert small.gold_id == big.gold_id and small.prompts == big.prompts and small.policy_id != big.policy_id
    assert small.tokenizer.get_vocab() == big.tokenizer.get_vocab()
    assert count(small.make_proxy(0)[0]) == count(big.make_proxy(0)[0])  # the same proxy backbone
    outs = {}
    for world in ("lab-tiny", "lab-tiny-small"):
        cfg = load_study_config(CONFIGS / "study-lab-small.yaml", world=world, overrides=TINY)
        outs[world] = run_study(cfg, tmp_path / world)
    pool = next(r for r in read_jsonl(outs["lab-tiny-small"] / "results.jsonl") if r.get("aggregation") == "gold"
                and r["study"] == "study_cell")
    assert pool["gold_scale"] > 0 and pool["policy_params"] == count(small.policy)
    res = goodhart("claims", str(outs["lab-tiny"]), "--smaller-policy", str(outs["lab-tiny-small"]))
    assert res.returncode == 0, res.stderr
    text = (outs["lab-tiny"] / "claims.md").read_text()
    for claim in ("a larger policy gains less gold from Best-of-n (32 comparisons, RM sizes full, s)",
                  "≈ a larger policy overoptimises about as much under Best-of-n (128 comparisons",
                  "≈ a larger policy overoptimises about as much under RL (RLOO β_KL 0, full, 32 comparisons)"):
        assert f"| {claim}" in text, claim
    # the study page's generator: the same rows, and the policy-size figure
    page = tmp_path / "study.md"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_study_doc.py"), str(outs["lab-tiny"]),
                          "--smaller-policy", str(outs["lab-tiny-small"]), "--page", str(page), "--img",
                          str(tmp_path / "img"), "--prefix", "t"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "## Policy size" in page.read_text() and "| a larger policy gains less gold" in page.read_text()
    assert (tmp_path / "img" / "t_policy_size.png").stat().st_size > 1000


@pytest.mark.parametrize("smaller", ["missing", "empty"])
def test_claims_refuses_a_smaller_policy_dir_that_is_not_a_study(tmp_path, smaller):
    from goodhart.runs import RESULTS

    study = tmp_path / "study"
    study.mkdir()
    (study / RESULTS).write_text("\n".join(__import__("json").dumps(r) for r in _study("lab", 1.0, 1.0, 0.5, 0.2)))
    other = tmp_path / "other"
    if smaller == "empty":
        other.mkdir()
        (other / RESULTS).write_text("")
    res = goodhart("claims", str(study), "--smaller-policy", str(other))
    assert res.returncode == 2 and res.stderr.startswith("error: ") and not (study / "claims.md").exists(), res.stderr
