"""What ``watchdog replay`` shows a person on a terminal: progress, then a summary table."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

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
from watchdog.policy.model import Policy
from watchdog.replay import ReplayResult

_console = Console(stderr=True)


@dataclass(frozen=True)
class ReplayInputs:
    """What a replay judged with: said in its summary, so that no default goes unnoticed."""

    events: str
    directory: str | None
    subjects: str | None
    accounts: str | None
    policy: str  # the file, or "built-in default policy"
    organization: str
    model: str | None

    @classmethod
    def of(cls, args: argparse.Namespace, policy: Policy) -> ReplayInputs:
        return cls(events=args.events, directory=args.directory, subjects=args.subjects,
                   accounts=getattr(args, "accounts", None),
                   policy=args.policy or "built-in default policy",
                   organization=policy.organization, model=args.model)

    def warnings(self) -> list[str]:
        out = []
        if not self.directory:
            out.append("no --directory: no account is known to the HR directory, so every "
                       "access may raise unknown_account and role-based rules judge nothing; "
                       "pass the directory records (JSONL)")
        if not self.policy or self.policy == "built-in default policy":
            out.append("no --policy: judging by watchdog's built-in default policy, not your "
                       "company's (its clauses are generic)")
        return out


@contextmanager
def replay_progress(events: str, show: bool = True) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over the bytes of ``events`` when stderr is a terminal (and ``show``:
    not while the alerts themselves go to the same terminal)."""
    if not show or not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("replay"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=_console, transient=True) as bar:
        task = bar.add_task("events", total=size_of(events))
        yield lambda n: bar.advance(task, n)


def replay_summary(r: ReplayResult, inputs: ReplayInputs | None = None) -> None:
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
        f" · duplicates {r.duplicates:,}"
        + (f" · id conflicts {r.conflicts:,} (an event.id reused with other content: "
           "processed)" if r.conflicts else "")
        + f" · late {r.late:,} · {r.rate:,.0f} events/s"
        + (f" · rejected documents in {r.rejected_path}" if r.rejected_path else ""),
        highlight=False)
    if inputs is not None:
        none = "[yellow]none[/yellow]"
        _console.print(
            f"policy {inputs.policy} ({inputs.organization}) · directory "
            f"{inputs.directory or none} · subjects {inputs.subjects or none} · accounts "
            f"{inputs.accounts or none} · model {inputs.model or 'none'}", highlight=False)
    if r.excused:
        by_rule = ", ".join(f"{k} {v}" for k, v in sorted(r.excused.items()))
        _console.print(f"excused by the policy's exceptions: {by_rule}", highlight=False)


def replay_summary_json(r: ReplayResult, inputs: ReplayInputs) -> str:
    """The summary as one JSON object (``watchdog replay --json``)."""
    return json.dumps({
        "inputs": asdict(inputs),
        "warnings": inputs.warnings(),
        "events": r.events,
        "invalid": dict(sorted(r.invalid.items())),
        "duplicates": r.duplicates,
        "conflicts": r.conflicts,
        "late": r.late,
        "alerts_total": sum(r.alerts.values()),
        "alerts": [{"rule": rule, "severity": sev, "count": n}
                   for (rule, sev), n in sorted(r.alerts.items())],
        "excused": dict(sorted(r.excused.items())),
        "rejected_path": str(r.rejected_path) if r.rejected_path else None,
        "seconds": round(r.seconds, 3),
    }, ensure_ascii=False)
