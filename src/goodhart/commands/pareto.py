"""`goodhart policy pareto`: RLOO at several β_KL and J-BOND as separate `policy train` runs, then one
results table and one gold/proxy-vs-sqrt(KL) plot (SPEC §8–§9). Finished sub-runs are skipped and an
interrupted one resumes from its checkpoint, so rerunning the command continues the sweep."""

from pathlib import Path

import yaml

from goodhart.commands.policy_train import run_policy
from goodhart.policy.train import STATE
from goodhart.progress import console
from goodhart.runs import CONFIG, RESULTS, RunDir, atomic_write_text, read_jsonl, write_jsonl


def _finished(run: Path, steps: int) -> bool:
    if not (run / RESULTS).is_file() or not (run / "policy").is_dir():
        return False
    return any(r.get("step") == steps for r in read_jsonl(run / RESULTS))


def run_pareto(cfg, out: str | Path) -> Path:
    """Run every grid cell of a PolicyParetoConfig under out/<method>-beta<β>/ and merge their rows."""
    from goodhart.report import build_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    for name, sub in cfg.runs():
        run = out / name
        if _finished(run, sub.steps):
            console.print(f"{name}: done already, skipped")
            continue
        console.print(f"[bold]{name}[/]")
        run_policy(sub, run, resume=(run / STATE).is_file(), overwrite=(run / CONFIG).is_file())
    rows = [r for name, _ in cfg.runs() for r in RunDir(out / name).results()]
    write_jsonl(out / RESULTS, rows)
    build_report(out)
    return out
