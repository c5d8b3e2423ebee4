"""Rich progress bars on stderr for long work (sampling, training, bootstrap)."""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


@contextmanager
def progress_bar(total: int, description: str) -> Iterator:
    """Yield advance(k=1, **fields); the bar shows done/total, elapsed and ETA."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(k: int = 1, info: str = "") -> None:
            progress.update(task, advance=k, info=info)

        yield advance


def track(items: Iterable, total: int, description: str) -> Iterator:
    with progress_bar(total, description) as advance:
        for item in items:
            yield item
            advance()
