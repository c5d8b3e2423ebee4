"""The shipped lab-world configs, each in a 2-seed smoke version on the tiny lab world (lab-tiny): the config's
structure (its grid's axes, methods and policy cells) kept, its sizes cut to seconds, run end to end, and
`goodhart claims` giving every row a verdict."""

import subprocess
import sys
from pathlib import Path

from goodhart.config import load_study_config
from goodhart.runs import read_jsonl

from helpers import goodhart

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "configs"
VERDICTS = ("reproduced", "contradicted", "inconclusive", "not measured", "not reached")

# the study-lab grid at lab-tiny size: the tiny backbone is 1 × 16 × 32, the pools a few prompts
TINY_STUDY = ["data.train_prompts=32", "data.eval_prompts=4", "data.eval_samples_per_prompt=64", "bon.bootstrap=20",
              "grid.rm_sizes={xs: {layers: 1, hidden: 16, intermediate: 8, lr: 3.0e-3}, full: {lr: 3.0e-3}}",
              "grid.data_sizes=[32, 128]", "grid.seeds=[0, 1]", "policy.data_sizes=[32, 128]", "policy.seeds=[0, 1]",
              "policy.settings={steps: 4, lr: 3.0e-3, batch_prompts: 4, samples_per_prompt: 2, eval_every: 2, "
              "eval_prompts: 4, eval_samples_per_prompt: 4, checkpoint_every: 4}"]


def _claim_rows(out: Path) -> list[str]:
    res = goodhart("claims", str(out))
    assert res.returncode == 0, res.stderr
    rows = [line for line in (out / "claims.md").read_text().splitlines()
            if line.startswith("| ") and "verdict" not in line]
    assert rows and all(any(f"**{v}**" in line for v in VERDICTS) for line in rows), rows
    return rows


def test_study_lab_config_in_a_two_seed_smoke_version(tmp_path):
    from goodhart.commands.study import run_study

    full = load_study_config(CONFIGS / "study-lab.yaml")
    assert full.world == "lab" and len(full.grid.rm_sizes) >= 4 and len(full.grid.seeds) >= 5
    assert min(full.grid.data_sizes) <= 64 and max(full.grid.data_sizes) >= 8192
    assert full.policy.methods == ["rloo"] and 0.0 in full.policy.kl_penalties and len(full.policy.seeds) >= 3
    cfg = load_study_config(CONFIGS / "study-lab.yaml", world="lab-tiny", overrides=TINY_STUDY)
    out = run_study(cfg, tmp_path / "study")
    cells = [r for r in read_jsonl(out / "results.jsonl") if r["study"] == "study_cell"]
    rm_cells = {r["cell"] for r in cells if r.get("method") != "rloo" and r["cell"] != "oracle"}
    policy = [r for r in cells if str(r["cell"]).startswith("rloo")]
    assert len(rm_cells) == 2 * 2 * 2 and len(policy) == 2 * 2 * 2  # sizes × data × seeds; β × data × seeds
    assert {r["kl_penalty"] for r in policy} == {0.0, 0.05}
    rows = _claim_rows(out)
    assert len(rows) >= 12
    # docs/claims.md's generator on this study alone: each claim once, the studies not given named as not run
    page = tmp_path / "claims.md"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_claims_doc.py"), "--study", str(out),
                          "--page", str(page)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    text = page.read_text()
    claims = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and "`goodhart study`" in line]
    assert len(claims) == len(set(claims)) == len(rows)
    assert "configs/rm-suite-lab.yaml" in text and "configs/pareto-lab.yaml" in text and "**not run**" in text
    # rebuilt from its record alone (the study's rows carried, its run named as carried), and a broken record refused
    page.unlink()
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_claims_doc.py"), "--page", str(page)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    carried = page.read_text()
    assert [line for line in carried.splitlines() if line.startswith("| ")] == [
        line for line in text.splitlines() if line.startswith("| ")]
    assert "rows carried from claims.json" in carried and "rows carried" not in text
    (tmp_path / "claims.json").write_text('{"study": [1, 2]}')
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_claims_doc.py"), "--page", str(page)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and page.read_text() == carried
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_claims_doc.py"), "--study", str(tmp_path),
                          "--page", str(tmp_path / "other.md")], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and not (tmp_path / "other.md").exists()


# the rm-suite-lab grid at lab-tiny size: its aggregates, noise levels' range and OOD check kept, 2 seeds
TINY_SUITE = ["seeds=[0, 1]", "noise_levels=[0.0, 0.4]", "data.train_prompts=32", "data.eval_prompts=4",
              "data.eval_samples_per_prompt=64", "rm.max_pairs=128", "ood_prompts=8", "bon.bootstrap=20"]


def test_rm_suite_lab_config_in_a_two_seed_smoke_version(tmp_path):
    from goodhart.commands.rm_suite import run_rm_suite
    from goodhart.config import load_rm_suite_config

    full = load_rm_suite_config(CONFIGS / "rm-suite-lab.yaml")
    assert full.world == "lab" and len(full.seeds) >= 10 and full.ood_prompts > 0
    assert {0.0, 0.1, 0.25, 0.4} <= set(full.noise_levels) and max(full.warm_sizes) == full.members
    cfg = load_rm_suite_config(CONFIGS / "rm-suite-lab.yaml", world="lab-tiny", overrides=TINY_SUITE)
    out = run_rm_suite(cfg, tmp_path / "suite")
    rows = [r for r in read_jsonl(out / "results.jsonl") if r["study"] == "rm_suite"]
    assert {(r["label_noise"], r["seed"]) for r in rows} == {(0.0, 0), (0.0, 1), (0.4, 0), (0.4, 1)}
    assert {"warm_M4", "ens_mean_M4", "wco_M4", "uwo_M4"} <= {r["reward_model"] for r in rows}
    bon = [r for r in read_jsonl(out / "results.jsonl") if r["study"] == "bon"]
    assert max(r["n"] for r in bon) == 64 and {r["seed"] for r in bon} == {0, 1}
    text = "\n".join(_claim_rows(out))
    assert "WARM" in text and "OOD" in text


# the pareto-lab grid at lab-tiny size: every method, β and reward-model cell kept, 2 seeds of 4 steps
TINY_PARETO = ["seeds=[0, 1]", "steps=4", "method_steps={}", "eval_every=2", "checkpoint_every=4", "reference_samples=16",
               "bon_bootstrap=20", "batch_prompts=4", "samples_per_prompt=2", "eval_prompts=4",
               "eval_samples_per_prompt=4"]


def test_pareto_lab_config_in_a_two_seed_smoke_version(tmp_path):
    """The header's recipe at lab-tiny size: a proxy, two members fine-tuned from it, their WARM and ENS, then
    the grid against a member with the WARM / ENS axis."""
    from goodhart.commands.pareto import run_pareto
    from goodhart.config import load_policy_pareto_config

    full = load_policy_pareto_config(CONFIGS / "pareto-lab.yaml", overrides=["reward_model=x"])
    assert full.world == "lab" and set(full.rl_betas) == {0.0, 0.01, 0.05, 0.2} and len(full.seeds) >= 3
    assert set(full.bond_divergences) == {"forward", "backward", "jeffreys"} and set(full.reward_models) == {"warm", "ens"}
    res = goodhart("rm", "train", "--world", "lab-tiny", "--set", "rm.max_pairs=128", "--out", str(tmp_path / "proxy"))
    assert res.returncode == 0, res.stderr
    for i, lr in ((1, "1.0e-3"), (2, "3.0e-3")):
        res = goodhart("rm", "train", "--world", "lab-tiny", "--set", f"init_from={tmp_path / 'proxy'}", "--set",
                       f"seed={i}", "--set", "rm.max_pairs=64", "--set", "rm.epochs=1", "--set", f"rm.lr={lr}",
                       "--set", "dropout=0.1", "--out", str(tmp_path / f"m{i}"))
        assert res.returncode == 0, res.stderr
    for kind in ("warm", "ensemble"):
        res = goodhart("rm", kind, str(tmp_path / "m1"), str(tmp_path / "m2"), "--out", str(tmp_path / kind))
        assert res.returncode == 0, res.stderr
    rms = f"reward_models={{warm: {tmp_path / 'warm'}, ens: {tmp_path / 'ensemble'}}}"
    cfg = load_policy_pareto_config(CONFIGS / "pareto-lab.yaml", world="lab-tiny",
                                    overrides=[f"reward_model={tmp_path / 'm1'}", rms, *TINY_PARETO])
    out = run_pareto(cfg, tmp_path / "pareto")
    summaries = [r for r in read_jsonl(out / "results.jsonl") if r["study"] == "policy_summary"]
    cells = {r["cell"] for r in summaries}
    assert len(summaries) == 2 * len(cells) and len(cells) == 4 + 1 + 3 + 2 * 2  # RLOO βs, J-BOND, BOND, RM axis
    assert {"rloo-beta0@warm", "rloo-beta0@ens", "jbond-beta0@warm", "jbond-beta0@ens"} <= cells
    text = "\n".join(_claim_rows(out))
    assert "BOND approaches the BoN frontier" in text and "WARM-trained policy ≥ single-RM policy" in text
