"""The study's live table: cells done / running / queued with their headline numbers and an ETA."""

import time

from rich.live import Live
from rich.table import Table

from goodhart.progress import console, redirect_bars


class StudyTable:
    """Rows keyed by cell id; `start`, `phase` and `finish` update them; the ETA is the mean time of
    the cells finished in this session times the cells left (cells differ in cost: a rough guide)."""

    def __init__(self, cells: list[str], done: dict[str, str]):
        self.status = {c: ("done", done[c]) if c in done else ("queued", "") for c in cells}
        self.times: list[float] = []
        self.running: str | None = None  # the cell whose progress bars this process shows (executor: local)
        self.t0 = time.perf_counter()
        self.started: dict[str, float] = {}  # several run at once under executor: ray

    def start(self, cell: str) -> None:
        self.running, self.started[cell] = cell, time.perf_counter()
        self.status[cell] = ("running", "")

    def phase(self, text: str) -> None:
        if self.running is not None:
            self.status[self.running] = ("running", text)

    def finish(self, cell: str, info: str) -> None:
        seconds = time.perf_counter() - self.started.pop(cell, self.t0)
        self.times.append(seconds)
        self.status[cell] = ("done", f"{info}  ({seconds:.0f} s)")
        if self.running == cell:
            self.running = None
        if not console.is_terminal:  # a log file gets one line per finished cell
            console.print(f"cell {cell} done: {info} ({seconds:.0f} s)")

    def __rich__(self) -> Table:
        counts = {s: sum(v[0] == s for v in self.status.values()) for s in ("done", "running", "queued")}
        left = counts["queued"] + counts["running"]
        eta = f"{left * sum(self.times) / len(self.times) / 60:.0f} min" if self.times and left else "—"
        table = Table(title="goodhart study", caption=f"done {counts['done']} · running {counts['running']} · "
                      f"queued {counts['queued']} · elapsed {(time.perf_counter() - self.t0) / 60:.1f} min · "
                      f"ETA {eta}", caption_justify="left")
        for col in ("cell", "status", "result"):
            table.add_column(col)
        style = {"done": "green", "running": "bold yellow", "queued": "dim"}
        for cell, (state, info) in self.status.items():
            table.add_row(cell, f"[{style[state]}]{state}[/]", info)
        return table

    def __enter__(self) -> "StudyTable":
        self._live = Live(self, console=console, refresh_per_second=2, transient=False)
        self._redirect = redirect_bars(self.phase)
        self._live.__enter__()
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._redirect.__exit__(*exc)
        self._live.__exit__(*exc)
