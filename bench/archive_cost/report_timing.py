"""``subject-report`` timed over the month's archive and over it grown to ``--big`` events
(step 3 of bench/bench_archive.py): the DuckDB query in this process, and the whole command."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bench.archive_cost import KEY, ROOT
from bench.archive_cost.month_archive import grow, month, size_rows
from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer
from watchdog.archive.reader import ArchiveQuery
from watchdog.archive.report import subject_report
from watchdog.archive.store import open_store


def month_rows(args: argparse.Namespace, tmp: Path) -> list[tuple[str, str]]:
    """The month's size, then subject-report of its busiest subject over the month and, with
    ``--big``, over the month grown to that many events."""
    rows: list[tuple[str, str]] = []
    d, out, n = month(args, tmp)
    rows += size_rows(out, d / "events.jsonl", n)
    subject, count = busiest_subject(d / "events.jsonl")
    q, cmd, found = time_report(out, subject)
    assert found == count, (found, count)
    rows.append((f"subject-report, busiest subject, month of {args.month_accounts:,} "
                 f"accounts ({n:,} events, {found} hits)",
                 f"query {q:.2f} s, whole command {cmd:.2f} s"))
    if args.big:
        t0 = time.perf_counter()
        total = grow(out, args.big)
        print(f"grew to {total:,} events in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        q, cmd, found = time_report(out, subject)
        rows.append((f"subject-report over {total:,} events ({found} hits)",
                     f"query {q:.2f} s, whole command {cmd:.2f} s"))
    return rows


def busiest_subject(events: Path) -> tuple[str, int]:
    counts: dict[str, int] = {}
    with events.open("rb") as f:
        for line in f:
            for s in orjson.loads(line).get("data", {}).get("subject_ids", ()):
                counts[s] = counts.get(s, 0) + 1
    s = max(counts, key=lambda k: counts[k])
    return s, counts[s]


def time_report(archive: Path, subject: str, repeat: int = 3) -> tuple[float, float, int]:
    """(best in-process query seconds, best whole-command seconds, events found)."""
    store = open_store(str(archive))
    pseudonym = Pseudonymizer(DEMO_KEY)(subject)
    best_q, found = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        q = ArchiveQuery(store)
        found = len(subject_report(q, subject, pseudonym).events)
        q.close()
        best_q = min(best_q, time.perf_counter() - t0)
    best_cmd = float("inf")
    env = dict(os.environ, WATCHDOG_PSEUDONYM_KEY=KEY,
               WATCHDOG_AUDIT_TRAIL=str(archive.parent / "access.jsonl"))
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "watchdog", "subject-report", "--archive",
                        str(archive), "--subject", subject, "--json"], check=True, cwd=ROOT,
                       env=env, stdout=subprocess.DEVNULL)
        best_cmd = min(best_cmd, time.perf_counter() - t0)
    return best_q, best_cmd, found

