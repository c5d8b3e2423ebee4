"""`goodhart study` on the smoke world: grid cells, aggregations, policy cells, resume, errors, report."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from goodhart.commands.study import run_study
from goodhart.config import load_study_config
from goodhart.report import build_report
from goodhart.runs import read_jsonl

from helpers import assert_one_line_error, goodhart

GRID = ["grid.data_sizes=[48,192]", "data.eval_samples_per_prompt=32", "bon.bootstrap=20"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "s"
    cfg = load_study_config(world="smoke", overrides=GRID + ["grid.aggregation=[single,ens,warm]", "members=2"])
    run_study(cfg, out)
    return out


def _rows(path, study="study_cell"):
    return [r for r in read_jsonl(path / "results.jsonl") if r.get("study") == study]


def test_every_cell_and_aggregation_has_a_curve_and_a_fit(study):
    cells = _rows(study)
    rm_cells = [r for r in cells if r["cell"] != "oracle"]
    assert len(rm_cells) == 2 * 2 * 3  # sizes × data sizes × (single, ens_M2, warm_M2)
    assert {r["aggregation"] for r in rm_cells} == {"single", "ens_M2", "warm_M2"}
    sizes = {r["rm_size"]: r["rm_params"] for r in rm_cells}
    assert sizes["xs"] < sizes["full"]
    for r in rm_cells:
        assert 0 <= r["val_acc"] <= 1 and 0 < r["chance_p"] <= 1 and r["val_correct"] <= r["val_pairs"]
        assert r["fit_r2"] is not None and np.isfinite(r["fit_alpha"])
        assert r["peak_gold_lo"] <= r["peak_gold"] <= r["peak_gold_hi"]
    curve = [r for r in _rows(study, "study") if r["cell"] == "full-n192-rho0-s0" and r["aggregation"] == "single"]
    assert [r["n"] for r in curve][0] == 1 and curve[0]["kl"] == 0 and curve[0]["gold"] == pytest.approx(0, abs=1e-9)
    # the proxy rises with n on the proxy's own ranking; more data gives a more accurate proxy on the full RM
    assert curve[-1]["proxy"] > curve[0]["proxy"] + 0.5
    acc = {(r["rm_size"], r["data_size"]): r["val_acc"] for r in rm_cells if r["aggregation"] == "single"}
    assert acc[("full", 192)] > 0.5
    ens = [r for r in _rows(study, "study") if r["aggregation"] == "ens_M2"]
    assert ens and all(r["disagreement"] >= 0 for r in ens)  # member variance at the pick, on every BoN row
    samples = _rows(study, "study_sample")
    assert {r["at"] for r in samples} == {"n=1", "peak", "max n"} and all(r["completion"] for r in samples)


def test_report_renders_from_results_alone(study):
    for p in (study / "plots").iterdir():
        p.unlink()
    (study / "report.html").unlink()
    html = build_report(study).read_text()
    assert "Fits" in html and "data:image/png;base64" in html and "What the proxy picks" in html
    assert {p.name for p in (study / "plots").iterdir()} >= {"study_gao.png", "study_gao.svg", "study_peak_vs_data.png",
                                                               "study_gap.svg", "study_methods.png"}


def test_resume_skips_finished_cells_and_repairs_a_torn_table(tmp_path, study):
    out = tmp_path / "s"
    cfg = load_study_config(world="smoke", overrides=GRID + ["grid.rm_sizes={xs: {layers: 1, hidden: 32}}"])
    run_study(cfg, out)
    full = read_jsonl(out / "results.jsonl")
    last = full[-1]["cell"]
    # a kill in the middle of the last cell's append: its rows gone but one, and a torn line
    kept = [r for r in full if r["cell"] != last] + [r for r in full if r["cell"] == last][:1]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"study": "stu')
    res = goodhart("study", "--world", "smoke", "--out", str(out), "--set", "grid.rm_sizes={xs: {layers: 1, hidden: 32}}",
                   *[a for s in GRID for a in ("--set", s)])
    assert_one_line_error(res, "--resume")
    before = len(read_jsonl(out / "metrics.jsonl"))
    run_study(cfg, out, resume=True)
    again = read_jsonl(out / "results.jsonl")
    assert len(again) == len(full)
    retrained = {r["cell"] for r in read_jsonl(out / "metrics.jsonl")[before:] if "cell" in r}
    assert retrained == {last}  # finished cells were skipped
    key = lambda r: (r["study"], r["cell"], r.get("aggregation"), r.get("n"), r.get("at"))  # noqa: E731
    for a, b in zip(sorted(full, key=key), sorted(again, key=key), strict=True):
        assert a.keys() == b.keys()
        for k in a.keys() - {"train_s"}:
            assert a[k] == (pytest.approx(b[k], rel=1e-6, abs=1e-9) if isinstance(b[k], float) else b[k]), k
    # growing the grid on --resume runs only the new cells
    bigger = load_study_config(world="smoke", overrides=GRID[1:] + ["grid.data_sizes=[48,96,192]",
                                                                   "grid.rm_sizes={xs: {layers: 1, hidden: 32}}"])
    run_study(bigger, out, resume=True)
    cells = {r["cell"] for r in _rows(out)}
    assert "xs-n96-rho0-s0" in cells and len(cells) == 4
    # a changed setting outside the grid is refused
    other = load_study_config(world="smoke", overrides=GRID + ["rm.lr=1e-2"])
    with pytest.raises(Exception, match="differs in rm"):
        run_study(other, out, resume=True)


def test_policy_cells_sweep_the_kl_penalty(tmp_path):
    out = tmp_path / "p"
    cfg = load_study_config(world="smoke", overrides=[
        "grid.data_sizes=[192]", "grid.rm_sizes={full: {}}", "data.eval_samples_per_prompt=32", "bon.bootstrap=0",
        "policy.methods=[rloo]", "policy.kl_penalties=[0,0.5]", "policy.settings={steps: 8, eval_every: 2}"])
    run_study(cfg, out)
    cells = {r["cell"]: r for r in _rows(out)}
    assert {"rloo-b0-full-n192-rho0-s0", "rloo-b0.5-full-n192-rho0-s0"} <= set(cells)
    curves = {c: [r for r in _rows(out, "study") if r["cell"] == c] for c in cells if c.startswith("rloo")}
    for curve in curves.values():
        assert [r["step"] for r in curve] == [0, 2, 4, 6, 8] and curve[0]["kl"] == pytest.approx(0, abs=1e-6)
        assert curve[-1]["kl"] > 0.01 and curve[-1]["proxy"] > curve[0]["proxy"]
    assert (out / "cells" / "full-n192-rho0-s0" / "rm" / "model.safetensors").is_file()
    html = build_report(out).read_text()
    assert "study_methods" in html and "a better frontier, or an earlier stop" in html
    from goodhart.commands.claims import claims_table

    rl = {r["claim"]: r for r in claims_table(read_jsonl(out / "results.jsonl")) if r["claim"].startswith(("RL", "≈"))}
    assert set(rl) == {"RL spends more KL than BoN for the same gold", "≈ a KL penalty acts like early stopping",
                       "≈ KL grows about quadratically with RL steps (β_KL 0: exponent 2 ± 0.5)"}
    assert all(r["verdict"] in {"reproduced", "contradicted", "inconclusive", "not measured", "not reached"}
               for r in rl.values())
    assert "KL(RL) − KL(BoN)" in rl["RL spends more KL than BoN for the same gold"]["measured"] or \
        rl["RL spends more KL than BoN for the same gold"]["verdict"] == "inconclusive"


def test_policy_seeds_choose_which_seeds_rms_get_policy_runs():
    from goodhart.commands.study import grid_cells, policy_cells

    base = ["grid.seeds=[0,1,2]", "grid.data_sizes=[192]", "policy.methods=[rloo]", "policy.kl_penalties=[0,0.1]"]
    every = load_study_config(world="smoke", overrides=base)
    assert {p.rm_cell.seed for p in policy_cells(every, grid_cells(every))} == {0, 1, 2}  # default: all seeds
    one = load_study_config(world="smoke", overrides=base + ["policy.seeds=[1]"])
    cells = policy_cells(one, grid_cells(one))
    assert {p.rm_cell.seed for p in cells} == {1} and len(cells) == 2 * len(one.grid.rm_sizes)
    res = goodhart("study", "--world", "smoke", "--set", "grid.seeds=[0]", "--set", "policy.seeds=[3]")
    assert_one_line_error(res, "policy.seeds must be values of grid.seeds")


def test_bad_study_input_is_one_line(tmp_path):
    res = goodhart("study", "--world", "smoke", "--out", str(tmp_path / "x"), "--set", "grid.data_sizes=[100000]")
    assert_one_line_error(res, "grid.data_sizes goes up to 100000")
    assert not (tmp_path / "x" / "results.jsonl").exists()
    res = goodhart("study", "--world", "smoke", "--out", str(tmp_path / "y"), "--set", "grid.rm_sizes={a: {hidden: 48}}")
    assert_one_line_error(res, "multiple of the head width 32")
    res = goodhart("study", "--world", "smoke", "--set", "policy.rm_sizes=[nope]")
    assert_one_line_error(res, "policy.rm_sizes names sizes not in grid.rm_sizes")
    res = goodhart("study", "--world", "smoke", "--set", "grid.label_noise=[0.7]")
    assert_one_line_error(res, "label_noise")


def test_family_cuts_leading_blocks_and_round_trips(tmp_path):
    from goodhart.worlds.family import count_params, shrink
    from goodhart.worlds.hf import proxy_from_pretrained
    from goodhart.worlds.smoke import make_proxy

    base, tok = make_proxy(0)
    small = shrink(base, layers=1, hidden=32, intermediate=16)
    assert small.config.num_attention_heads == 1 and small.config.num_hidden_layers == 1
    q_big = base.bert.encoder.layer[0].attention.self.query.weight
    assert torch.equal(small.bert.encoder.layer[0].attention.self.query.weight, q_big[:32, :32])
    assert count_params(small)[0] < count_params(base)[0] / 4
    same = shrink(base)
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), base.state_dict().values(), strict=True))
    small.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    loaded, _ = proxy_from_pretrained(str(tmp_path / "m"), 0, False)
    x = torch.tensor([[2, 5, 7, 3]])
    small.eval()
    loaded.eval()
    assert torch.allclose(loaded(input_ids=x).logits, small(input_ids=x).logits)


@pytest.fixture(scope="module")
def seeded_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeded") / "s"
    cfg = load_study_config(world="smoke", overrides=GRID + ["grid.seeds=[0,1]", "grid.rm_sizes={xs: {layers: 1, "
                                                             "hidden: 32}, full: {}}"])
    run_study(cfg, out)
    return out


def test_claims_on_a_two_seed_study_give_every_row_a_verdict(seeded_study):
    res = goodhart("claims", str(seeded_study))
    assert res.returncode == 0, res.stderr
    table = (seeded_study / "claims.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "verdict" not in line]
    verdicts = {"reproduced", "contradicted", "inconclusive", "not measured", "not reached"}
    assert len(rows) >= 12 and all(any(f"**{v}**" in line for v in verdicts) for line in rows)
    assert "Rule: reproduced: the 95% interval excludes 0" in table
    seeds = next(line for line in rows if "replicate across seeds" in line)
    assert "not measured" not in seeds and "0, 1" in seeds
    assert "proxy rises while gold peaks and falls (xs, 48 comparisons)" in table


def test_claims_without_seeds_say_which_rows_need_them(study):
    from goodhart.commands.claims import claims_table

    rows = {r["claim"]: r for r in claims_table(read_jsonl(study / "results.jsonl"))}
    seeds = rows["the fall and the fit replicate across seeds"]
    assert seeds["verdict"] == "not measured" and seeds["measured"] == "needs ≥ 2 seeds (grid.seeds); the study has 1"


def test_claim_rules_by_hand():
    from goodhart.commands.claims import equivalence, pooled, verdict  # pooled lives in bon.prompt_stats

    assert verdict(0.1, 0.5) == "reproduced" and verdict(-0.5, -0.1) == "contradicted"
    assert verdict(-0.1, 0.5) == "inconclusive" and verdict(-0.5, -0.1, direction=-1) == "reproduced"
    assert equivalence(-0.05, 0.08) == "reproduced" and equivalence(0.02, 0.3) == "contradicted"
    assert equivalence(-0.2, 0.05) == "inconclusive"
    mean, lo, hi = pooled([1.0, 3.0], [0.9, 2.9], [1.1, 3.1])  # two seeds far apart: the seed spread dominates
    assert mean == 2.0 and lo < 1.2 and hi > 2.8


DOC_SCRIPT = Path(__file__).parents[1] / "scripts" / "build_study_doc.py"


def _build_doc(study, page, img):
    return subprocess.run([sys.executable, str(DOC_SCRIPT), str(study), "--page", str(page), "--img", str(img),
                           "--prefix", "smoke"], capture_output=True, text=True)


def test_study_doc_is_generated_below_the_marker_from_results(seeded_study, tmp_path):
    spec = importlib.util.spec_from_file_location("build_study_doc", DOC_SCRIPT)
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    page, img = tmp_path / "docs" / "study.md", tmp_path / "docs" / "img"
    page.parent.mkdir()
    page.write_text("# Study\n\nhand-written setup\n\n" + doc.MARKER + "\nstale numbers\n")
    res = _build_doc(seeded_study, page, img)
    assert res.returncode == 0, res.stderr
    text = page.read_text()
    assert text.startswith("# Study\n\nhand-written setup") and "stale numbers" not in text and text.count(doc.MARKER) == 1
    assert goodhart("claims", str(seeded_study)).returncode == 0
    claims = [line for line in (seeded_study / "claims.md").read_text().splitlines() if line.startswith("| ")]
    assert len(claims) >= 12 and all(line in text for line in claims)  # the same rows as `goodhart claims`
    cells = [line for line in text.splitlines() if line.startswith(("| xs |", "| full |")) and "M |" in line]
    assert len(cells) == 4  # 2 RM sizes × 2 data sizes, each pooled over seeds 0 and 1
    assert all(line.count(", ") >= 2 for line in cells)  # val acc and peak n listed per seed
    for name in ("smoke_gao.png", "smoke_pooled.png"):
        assert f"](img/{name})" in text and (img / name).read_bytes()[:4] == b"\x89PNG"
        assert (img / name).stat().st_size < 300_000
    again = _build_doc(seeded_study, page, img)  # regenerating replaces, never appends
    assert again.returncode == 0 and page.read_text() == text


def test_study_doc_refuses_a_directory_without_results(tmp_path):
    page = tmp_path / "study.md"
    page.write_text("kept\n")
    res = _build_doc(tmp_path, page, tmp_path / "img")
    assert_one_line_error(res, "has no results.jsonl")
    assert page.read_text() == "kept\n" and not (tmp_path / "img").exists()


def test_cells_share_one_tokenised_pool_that_scores_as_the_texts_do():
    """Every RM cell scores the same pool: Pools.encoded_pool tokenises it once per tokenizer and process, its
    scores are those of the pool's texts, and pools sent to a worker go without it."""
    from goodhart.commands.study import prepare
    from goodhart.scoring import score_encoded, score_pairs
    from goodhart.worlds import smoke

    pools = prepare(load_study_config(world="smoke", overrides=GRID))
    model, tok = smoke.make_proxy(seed=0)
    first = pools.encoded_pool(tok, 32)
    assert pools.encoded_pool(tok, 32) is first and pools.encoded_pool(tok, 16) is not first
    prompts, texts = pools.pool_texts()
    np.testing.assert_allclose(score_encoded(model, first), score_pairs(model, tok, prompts, texts, max_length=32),
                               rtol=1e-6, atol=1e-6)
    assert pools.encoded and not pools.portable().encoded
