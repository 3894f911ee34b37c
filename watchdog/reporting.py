"""What ``watchdog replay`` shows a person on a terminal: progress, then a summary table."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from watchdog.files.jsonl import size_of
from watchdog.replay import ReplayResult

_console = Console(stderr=True)


@contextmanager
def replay_progress(events: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over the bytes of ``events`` when stderr is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("replay"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=_console, transient=True) as bar:
        task = bar.add_task("events", total=size_of(events))
        yield lambda n: bar.advance(task, n)


def replay_summary(r: ReplayResult) -> None:
    table = Table(title="watchdog replay", show_footer=True)
    table.add_column("rule", footer="total")
    table.add_column("severity")
    table.add_column("alerts", justify="right", footer=str(sum(r.alerts.values())))
    for (rule, sev), n in sorted(r.alerts.items()):
        table.add_row(rule, sev, str(n))
    _console.print(table)
    invalid = sum(r.invalid.values())
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.invalid.items()))
    _console.print(
        f"events read {r.events:,} · invalid {invalid:,}{f' ({reasons})' if reasons else ''}"
        f" · duplicates {r.duplicates:,} · late {r.late:,} · {r.rate:,.0f} events/s"
        + (f" · rejected documents in {r.rejected_path}" if r.rejected_path else ""),
        highlight=False)
