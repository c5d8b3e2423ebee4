"""The `goodhart` command line: parse, resolve a config, call one library function. Errors a user can cause
print as one line `error: …` and exit with status 2."""

import inspect
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from goodhart.errors import GoodhartError
from goodhart.runs import cache_dir, launched, writer

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")]
WorldOpt = Annotated[str | None, typer.Option(help="lab (default) | lab-tiny | lab-small (a smaller policy, same gold) | lab-tiny-small | smoke | sentiment | gao (learned gold RM) | hf")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a config key: --set rm.lr=1e-4 (repeatable)")]
OverwriteOpt = Annotated[bool, typer.Option(help="replace an existing run in --out")]
ResumeOpt = Annotated[bool, typer.Option(help="continue the killed run in --out from its last checkpoint")]
OutOpt = Annotated[Path | None, typer.Option(help="run directory (default runs/<command>-<world>-<time>)")]


def _default_out(out: Path | None, prefix: str) -> Path:
    """--out, or runs/<prefix>-<time> (the prefix names the command and its world or method)."""
    return out or Path("runs") / f"{prefix}-{datetime.now():%Y%m%d-%H%M%S}"


def config_command(group: typer.Typer, name: str, loader: str, config=ConfigOpt, as_set: tuple[str, ...] = ()):
    """Register `fn(cfg, out, overwrite, **own options)` as command `name` of `group`, with the options every
    config-driven command shares declared here once: --config (or a CONFIG argument), --world, --out, --set,
    --overwrite. cfg is resolved by goodhart.config.<loader> (world preset < file < --set). Own options
    named in `as_set` are shorthands for `--set NAME=VALUE` (given first, so an explicit --set wins)."""
    def register(fn):
        P = inspect.Parameter
        shared = [P(n, P.POSITIONAL_OR_KEYWORD, default=d, annotation=a) for n, a, d in (
            ("config", config, None), ("world", WorldOpt, None), ("out", OutOpt, None), ("set_", SetOpt, None),
            ("overwrite", OverwriteOpt, False))]
        params = shared + list(inspect.signature(fn).parameters.values())[3:]

        def command(config=None, world=None, out=None, set_=None, overwrite=False, **own):
            from goodhart import config as configs

            sets = [f"{key}={own.pop(key)}" for key in as_set if own.get(key) is not None] + list(set_ or [])
            return fn(getattr(configs, loader)(config, world, sets), out, overwrite, **own)

        command.__name__, command.__doc__ = fn.__name__, fn.__doc__
        command.__signature__ = inspect.Signature(params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        group.command(name)(command)
        return fn

    return register

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Study reward-model overoptimization: gold vs proxy reward under Best-of-n and RL.\n\n"
         "Example: goodhart run --world smoke --out runs/smoke",
)


def _version(value: bool) -> None:
    if value:
        import importlib.metadata

        typer.echo(f"goodhart {importlib.metadata.version('goodhart')}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                        help="print the version and exit")] = None):
    """Study reward-model overoptimization: gold vs proxy reward under Best-of-n and RL.

    Example: goodhart run --world smoke --out runs/smoke
    """


@config_command(app, "run", "load_run_config")
def run(cfg, out: Path | None, overwrite: bool):
    """Sample, train a proxy RM on gold labels, and draw Best-of-n gold vs proxy curves.

    Example: goodhart run --world smoke --set data.eval_samples_per_prompt=32 --out runs/demo
    """
    from goodhart.commands.run import run_bon_study

    run_bon_study(cfg, _default_out(out, cfg.world), overwrite=overwrite)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory holding results.jsonl")]):
    """Rebuild plots/ and report.html from a run's results.jsonl alone.

    Example: goodhart report runs/smoke
    """
    from goodhart.report import build_report

    typer.echo(str(build_report(run_dir)))


@config_command(app, "study", "load_study_config",
                config=Annotated[Path | None, typer.Argument(help="study YAML (e.g. configs/study-sentiment.yaml)")])
def study(
    cfg, out: Path | None, overwrite: bool,
    resume: Annotated[bool, typer.Option(help="continue the study in --out: finished cells are skipped")] = False,
):
    """Sweep proxy-RM size × data size × label noise × aggregation (× RL / J-BOND), fit Gao's curves, report.

    Example: goodhart study configs/study-sentiment.yaml --out runs/study   (then rerun with --resume)
    """
    from goodhart.commands.study import run_study

    typer.echo(str(run_study(cfg, _default_out(out, f"study-{cfg.world}"), overwrite=overwrite, resume=resume)
                   / "report.html"))


@app.command()
def claims(study_dir: Annotated[Path, typer.Argument(
        help="a `goodhart study`, `goodhart rm suite` or `goodhart policy pareto` directory")],
        smaller_policy: Annotated[Path | None, typer.Option(help="a `goodhart study` of the same grid on a smaller "
                                                            "policy (--world lab-small): adds Gao's policy-size rows")] = None):
    """One row per claim of the papers the study (or RM suite, or policy sweep) measured: value, 95% interval
    or McNemar test, verdict by one stated rule; printed and written to STUDY_DIR/claims.md.

    Example: goodhart claims runs/study-lab --smaller-policy runs/study-lab-small
    """
    from goodhart.commands.claims import RULE, run_claims
    from goodhart.commands.size_claims import run_size_claims

    table, path = run_claims(study_dir) if smaller_policy is None else run_size_claims(study_dir, smaller_policy)
    typer.echo(f"rule: {RULE}")
    for r in table:
        typer.echo(f"{r['verdict']:<13} {r['claim']}: {r['measured']}")
    typer.echo(str(path))


@app.command()
def recommend(
    run_dir: Annotated[Path, typer.Argument(help="a `goodhart run` directory")],
    tolerance: Annotated[float, typer.Option(help="gold units the hedged n may lose against the predicted peak")] = 0.1,
):
    """Choose n for Best-of-n from the fitted gold curve: the gold-optimal n and a hedged n, checked on
    held-out evaluation prompts; writes recommend.json.

    Example: goodhart recommend runs/sentiment --tolerance 0.05
    """
    from goodhart.commands.recommend import recommend_lines, recommend_run

    if tolerance < 0:
        raise GoodhartError("--tolerance must be >= 0")
    for line in recommend_lines(recommend_run(run_dir, tolerance)):
        typer.echo(line)
    typer.echo(str(Path(run_dir) / "recommend.json"))


@config_command(app, "stopping", "load_stopping_config")
def stopping(cfg, out: Path | None, overwrite: bool):
    """Where should Best-of-n stop? Largest n, recommend's hedged n, best soft-BoN λ, a gold-free
    disagreement alarm and a fixed KL budget, each against the true gold optimum on held-out prompts.

    Example: goodhart stopping --world smoke --out runs/stop
    """
    from goodhart.commands.stopping import run_stopping

    typer.echo(str(run_stopping(cfg, _default_out(out, f"stopping-{cfg.world}"), overwrite=overwrite) / "table.md"))


@app.command()
def doctor(fix: Annotated[bool, typer.Option(help="remove stale cache entries and convert SmolLM2 now")] = False):
    """Check versions, device, packaged models and the cache; exit 1 if something required is missing.

    Example: goodhart doctor --fix
    """
    from goodhart.doctor import checks

    rows = checks(fix)
    for what, ok, detail in rows:
        typer.echo(f"{'ok ' if ok else 'BAD'}  {what:28s} {detail}")
    if not all(ok for _, ok, _ in rows):
        raise typer.Exit(1)


def _group(name: str, help: str) -> typer.Typer:
    group = typer.Typer(no_args_is_help=True, help=help)
    app.add_typer(group, name=name)
    return group


rm_app = _group("rm", "Reward models: train, ensemble, WARM, evaluate (SPEC §5–§6).")


@config_command(rm_app, "train", "load_rm_train_config")
def rm_train(cfg, out: Path | None, overwrite: bool, resume: ResumeOpt = False):
    """Train one Bradley–Terry RM from a preference file (--set data=pairs.jsonl) or a world's samples.

    Example: goodhart rm train --world smoke --set rm.label_noise=0.25 --set dropout=0.05 --out runs/rm1
    """
    from goodhart.reward.run import train_rm_run

    if resume and out is None:
        raise GoodhartError("--resume needs the --out of the run to continue")
    train_rm_run(cfg, _default_out(out, f"rm-{cfg.world}"), overwrite=overwrite, resume=resume)


@rm_app.command("warm")
def rm_warm(
    members: Annotated[list[Path], typer.Argument(help="member checkpoints or `rm train` run dirs (≥ 2)")],
    out: Annotated[Path, typer.Option(help="directory for the weight-averaged checkpoint")],
    weights: Annotated[str | None, typer.Option(help="comma-separated member weights (default uniform)")] = None,
):
    """Weight-average RMs fine-tuned from one shared initialisation (WARM) into one checkpoint.

    Example: goodhart rm warm runs/rm1 runs/rm2 runs/rm3 --out runs/warm3
    """
    from goodhart.reward.run import build_warm

    w = _floats(weights) if weights else None
    typer.echo(str(build_warm(members, out, w)))


@rm_app.command("ensemble")
def rm_ensemble(
    members: Annotated[list[Path], typer.Argument(help="member checkpoints or `rm train` run dirs (≥ 2)")],
    out: Annotated[Path, typer.Option(help="directory for ensemble.json")],
    method: Annotated[str, typer.Option(help="mean | wco (worst case) | uwo (mean − λ·variance)")] = "mean",
    lam: Annotated[float, typer.Option(help="λ for uwo")] = 1.0,
):
    """Build a prediction ensemble (scores every member, then aggregates).

    Example: goodhart rm ensemble runs/rm1 runs/rm2 --method wco --out runs/ens
    """
    from goodhart.reward.load import write_ensemble

    typer.echo(str(write_ensemble(out, members, method, lam)))


@rm_app.command("eval")
def rm_eval(
    models: Annotated[list[Path], typer.Argument(help="RMs: checkpoints, `rm train` run dirs or ensemble dirs")],
    data: Annotated[list[Path], typer.Option(help="preference JSONL (prompt, chosen, rejected[, flipped]); repeatable")],
    out: Annotated[Path | None, typer.Option(help="append the rows to OUT/results.jsonl")] = None,
):
    """Accuracy of each RM on each preference file; rows flagged `flipped` are scored apart (memorisation).

    Example: goodhart rm eval runs/rm1 runs/warm3 --data runs/rm1/pairs.jsonl
    """
    from goodhart.reward.run import eval_reward_models
    from goodhart.runs import RESULTS, append_jsonl

    if out is not None and out.exists() and not out.is_dir():
        raise GoodhartError(f"--out {out} exists and is not a directory")
    rows = eval_reward_models(models, data)
    for r in rows:
        typer.echo(f"{r['reward_model']:<24} {r['data']:<24} {r['subset']:<8} n={r['pairs']:<6} accuracy {r['accuracy']:.3f}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        append_jsonl(out / RESULTS, rows)


@config_command(rm_app, "suite", "load_rm_suite_config")
def rm_suite(cfg, out: Path | None, overwrite: bool,
             resume: Annotated[bool, typer.Option(help="continue the suite in --out: finished replicates are "
                                                      "skipped")] = False):
    """Members from a shared run → single vs ENS mean / WCO / UWO vs WARM (and independent members):
    clean, flipped and OOD accuracy with paired McNemar tests, and Best-of-n gold with each as the proxy,
    for every seed × label noise ρ (0.25 by default), pooled over seeds.

    Example: goodhart rm suite --config configs/rm-suite.yaml --out runs/rm-suite   (then goodhart claims runs/rm-suite)
    """
    from goodhart.commands.rm_suite import run_rm_suite

    if resume and out is None:
        raise GoodhartError("--resume needs the --out of the suite to continue")
    run_rm_suite(cfg, _default_out(out, f"rm-suite-{cfg.world}"), overwrite=overwrite, resume=resume)


policy_app = _group("policy", "Policy optimisation against a proxy RM: RLOO, REINFORCE, BOND, J-BOND.")


@config_command(policy_app, "train", "load_policy_train_config", as_set=("method",))
def policy_train(cfg, out: Path | None, overwrite: bool, resume: ResumeOpt = False,
                 method: Annotated[str | None, typer.Option(help="rloo | reinforce | bond | jbond (default jbond); "
                                                                 "the same as --set method=M")] = None):
    """Train the world's policy against a proxy RM; gold, proxy and KL are measured as it goes.

    Example: goodhart policy train --world smoke --set reward_model=runs/rm1 --set method=jbond --out runs/pol
    """
    from goodhart.commands.policy_train import run_policy

    if resume and out is None:
        raise GoodhartError("--resume needs --out (the run directory to continue)")
    run_policy(cfg, _default_out(out, f"policy-{cfg.method}"), resume=resume, overwrite=overwrite)


@policy_app.command("pareto")
def policy_pareto(
    config: ConfigOpt = None,
    world: WorldOpt = None,
    out: Annotated[Path, typer.Option(help="sweep directory (rerun to continue an interrupted sweep)")] = Path("runs/pareto"),
    set_: SetOpt = None,
):
    """RLOO at several β_KL, J-BOND and BOND (with seeds) on one axis: a shared reference pool normalises every run
    and gives the Best-of-n curve; gold against d and against proxy; `goodhart claims` on the directory.

    Example: goodhart policy pareto --set reward_model=runs/x/proxy_rm --set steps=30 --out runs/pareto
    """
    from goodhart.config import load_policy_pareto_config

    cfg = load_policy_pareto_config(config, world, set_ or [])
    from goodhart.commands.pareto import run_pareto

    typer.echo(str(run_pareto(cfg, out) / "report.html"))


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise GoodhartError(f"--weights expects comma-separated numbers, got {text!r}") from None


TORCHRUN_COMMANDS = (["run"], ["rm", "train"], ["policy", "train"])  # the commands split across processes


def _check_torchrun(argv: list[str]) -> None:
    """Under torchrun, refuse (one line) the commands that run in one process."""
    if not launched():
        return
    words = []
    for arg in argv:
        if arg.startswith("-") or len(words) == 2:
            break
        words.append(arg)
    if any(words[: len(command)] == command for command in TORCHRUN_COMMANDS):
        return
    raise GoodhartError(f"`goodhart {' '.join(words)}` runs in one process; run it without torchrun (under torchrun: "
                        "goodhart run, rm train, policy train)")


ERROR_ECHO = 200  # characters of user input an error line may echo


def _one_line(text: str) -> str:
    """A message as one bounded line (an echoed 3 MB YAML value must not become a 3 MB line)."""
    line = " ".join(str(text).split())
    return line if len(line) <= 2 * ERROR_ECHO else line[: 2 * ERROR_ECHO] + f"… ({len(line)} characters)"


def _is_usage_error(e: Exception) -> bool:
    """click's (or typer's vendored click's) ClickException: a mistyped command, option or value."""
    return any(c.__name__ == "ClickException" for c in type(e).__mro__) and hasattr(e, "format_message")


def main() -> None:
    # Offline by default: with a hub id and no network, transformers retries for ~45 s before failing.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    interrupted = ("interrupted: the run directory keeps everything written so far; rerun the same command with "
                   "--resume to continue (policy train, rm train, study)")
    finished = False
    try:
        # without standalone mode click returns exit codes instead of raising (typer turns Ctrl-C into 130)
        _check_torchrun(sys.argv[1:])
        cache_dir()  # a GOODHART_CACHE that is a file is refused before any command writes
        rc = app(standalone_mode=False)
        finished = True
    except GoodhartError as e:
        if writer():  # under torchrun every rank raises the same error; rank 0 says it
            print(f"error: {_one_line(e)}", file=sys.stderr)
        else:  # let rank 0 say it before torchrun, seeing this rank exit, stops the others
            import time

            time.sleep(2)
        sys.exit(2)
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, EOFError):
        sys.exit(1)
    except Exception as e:  # usage errors: typer raises its own copies of click's exceptions
        if not _is_usage_error(e):
            raise
        print(f"error: {_one_line(e.format_message())}", file=sys.stderr)
        sys.exit(2)
    finally:
        if "goodhart.dist" in sys.modules:  # leave torchrun's process group cleanly
            sys.modules["goodhart.dist"].teardown(wait=finished)
    if rc == 130:
        print(interrupted, file=sys.stderr)
    if isinstance(rc, int) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
