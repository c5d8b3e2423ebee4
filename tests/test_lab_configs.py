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
    res = goodhart("claims", str(out))
    assert res.returncode == 0, res.stderr
    rows = [line for line in (out / "claims.md").read_text().splitlines()
            if line.startswith("| ") and "verdict" not in line]
    assert len(rows) >= 12 and all(any(f"**{v}**" in line for v in VERDICTS) for line in rows)
    # docs/claims.md's generator on this study alone: each claim once, the studies not given named as not run
    page = tmp_path / "claims.md"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_claims_doc.py"), "--study", str(out),
                          "--page", str(page)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    text = page.read_text()
    claims = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and "`goodhart study`" in line]
    assert len(claims) == len(set(claims)) == len(rows)
    assert "configs/rm-suite-lab.yaml" in text and "configs/pareto-lab.yaml" in text and "**not run**" in text
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_claims_doc.py"), "--study", str(tmp_path),
                          "--page", str(tmp_path / "other.md")], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and not (tmp_path / "other.md").exists()

