"""Rich progress bars on stderr for long work (sampling, training, bootstrap)."""

from collections.abc import Callable, Iterable, Iterator
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

# While a live display owns the terminal (the study table), bars report here instead of drawing:
# rich allows one live display at a time.
_sink: Callable[[str], None] | None = None


@contextmanager
def redirect_bars(sink: Callable[[str], None]) -> Iterator[None]:
    """Send every progress bar's state, as one line of text, to `sink` for the duration."""
    global _sink
    previous, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = previous


@contextmanager
def progress_bar(total: int, description: str) -> Iterator:
    """Yield advance(k=1, **fields); the bar shows done/total, elapsed and ETA."""
    if _sink is not None:
        done = 0

        def report(k: int = 1, info: str = "") -> None:
            nonlocal done
            done += k
            _sink(f"{description} {done}/{total} {info}".rstrip())

        report(0)
        yield report
        return
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
