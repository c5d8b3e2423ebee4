"""The `goodhart` command line: parse, resolve a config, call one library function.

Errors a user can cause print as one line `error: …` and exit with status 2.
"""

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from goodhart.errors import GoodhartError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Study reward-model overoptimization: gold vs proxy reward under Best-of-n and RL.\n\n"
         "Example: goodhart run --world smoke --out runs/smoke",
)


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    world: Annotated[str | None, typer.Option(help="smoke | sentiment (default) | hf")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/<world>-<time>)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a key, e.g. --set rm.lr=1e-4")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run in --out")] = False,
):
    """Sample, train a proxy RM on gold labels, and draw Best-of-n gold vs proxy curves.

    Example: goodhart run --world smoke --set data.eval_samples_per_prompt=32 --out runs/demo
    """
    from goodhart.config import load_run_config

    cfg = load_run_config(config, world, set_ or [])
    from goodhart.study.bon_run import run_bon_study

    out = out or Path("runs") / f"{cfg.world}-{datetime.now():%Y%m%d-%H%M%S}"
    run_bon_study(cfg, out, overwrite=overwrite)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory holding results.jsonl")]):
    """Rebuild plots/ and report.html from a run's results.jsonl alone.

    Example: goodhart report runs/smoke
    """
    from goodhart.report import build_report

    typer.echo(str(build_report(run_dir)))


def main() -> None:
    # Offline by default: with a hub id and no network, transformers retries for ~45 s before failing.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app(standalone_mode=False)
    except GoodhartError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; the run directory keeps what was written so far", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, EOFError):
        sys.exit(1)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
