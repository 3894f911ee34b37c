"""Compaction measured: a live-like archive (a flush every ``--step`` seconds of event time, as
the daemon's sink does) of a simulated world, then ``compact``: segments, ``contents()`` time,
subject-report time (the busiest subject, in this process) and size, before and after, and
compaction's CPU seconds per million events.

    python -m bench.archive_cost.compaction [--accounts 2000] [--days 30] [--step 10]
        [--grace-hours 24] [--work DIR] [--lean]

``--lean``: the live-like archive written as a daemon writes it by default (format 3: the
events' ``subject_ids`` not stored, read from the documents until compaction stores them).

``--hourly``: as the shipped timers keep it: ``compact`` (grace 1 h) every hour of event time
while the archive is written, so that the open day is merged by tier; measured as written (the
flushes since the last hourly run still small), with the compactions' CPU seconds.

The world and the live-like archive are kept under ``--work`` and reused when present (the
archive copied first, so that a re-run measures compaction of the same live archive)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson

from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer
from watchdog.archive import checkpoint
from watchdog.archive import manifest as mf
from watchdog.archive.buffer import Chunk
from watchdog.archive.compact import compact
from watchdog.archive.layout import EVENTS
from watchdog.archive.reader import ArchiveQuery
from watchdog.archive.report import subject_report
from watchdog.archive.store import Store, open_store
from watchdog.archive.writer import ArchiveWriter

Item = tuple[str, float, bytes, tuple[str, ...]]


def world(work: Path, accounts: int, days: int) -> Path:
    out = work / f"world-{accounts}-{days}"
    if not (out / "events.jsonl").exists():
        subprocess.run([sys.executable, "-m", "watchdog", "simulate", "--out", str(out),
                        "--accounts", str(accounts), "--days", str(days)], check=True)
    return out


def events(path: Path) -> list[Item]:
    out = []
    with path.open("rb") as f:
        for line in f:
            raw = line.rstrip(b"\n")
            d = orjson.loads(raw)
            t = datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00")).timestamp()
            out.append((d["event"]["id"], t, raw,
                        tuple(d.get("data", {}).get("subject_ids", ()))))
    out.sort(key=lambda x: x[1])
    return out


def write_live(items: list[Item], out: Path, step: float, lean: bool = False,
               hourly: bool = False) -> float:
    """The daemon's pattern: a flush when ``step`` seconds of event time have passed (with
    ``hourly``, a compaction after the first flush of each hour); returns the compactions'
    CPU seconds."""
    store = open_store(str(out), create=True)
    w = ArchiveWriter(store, "daemon-0", store_subjects=not lean)
    hour, cpu = items[0][1] // 3600, 0.0

    def add(part: list[Item]) -> None:
        if lean:  # as the daemon's sink hands a batch over
            w.add_chunk(EVENTS, Chunk.of_columns([x[0] for x in part], [x[1] for x in part],
                                                 [x[2] for x in part], None))
        elif part:
            w.add_many(EVENTS, part)

    due, start = items[0][1] + step, 0
    for i, item in enumerate(items):
        if item[1] >= due:
            add(items[start:i])
            w.flush()
            due, start = item[1] + step, i
            if hourly and item[1] // 3600 != hour:
                hour, c0 = item[1] // 3600, time.process_time()
                compact(store, "compact")
                cpu += time.process_time() - c0
    add(items[start:])
    w.flush()
    return cpu


def measure(store: Store, subject: str, repeat: int, *, whole: bool = False
            ) -> tuple[float, ...]:
    """(segments, contents() s, subject-report s, of which the query given the contents,
    hits, events bytes); times: the best of ``repeat``."""
    tc = tr = tq = float("inf")
    hits = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        # as every reader opens the archive (``whole``: as before checkpoints)
        c = mf.contents(store) if whole else checkpoint.contents(store)
        t1 = time.perf_counter()
        q = ArchiveQuery(store, contents=c)
        rep = subject_report(q, subject, Pseudonymizer(DEMO_KEY)(subject))
        q.close()
        t2 = time.perf_counter()
        tc, tr, tq, hits = min(tc, t1 - t0), min(tr, t2 - t0), min(tq, t2 - t1), len(rep.events)
    return (len(c.segments), tc, tr, tq, hits, sum(s.bytes for s in c.of(EVENTS)))


def show(args: argparse.Namespace, n: int, count: int, rows: list[tuple[str, tuple[float, ...]]]
         ) -> None:
    print(f"world: {args.accounts:,} accounts, {args.days} days, {n:,} events; flush every "
          f"{args.step:g} s of event time; busiest subject {count} events")
    for i, name, fmt in ((0, "segments", "{:,.0f}"), (1, "contents() s", "{:.2f}"),
                         (2, "subject-report s", "{:.2f}"),
                         (3, "of which query s", "{:.2f}"), (5, "events bytes", "{:,.0f}")):
        print(f"{name:>18}: " + ", ".join(f"{label} {fmt.format(m[i])}" for label, m in rows))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=2000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--step", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--grace-hours", type=float, default=24.0)
    p.add_argument("--work", type=Path)
    p.add_argument("--lean", action="store_true", help="format 3, as a daemon writes")
    p.add_argument("--hourly", action="store_true",
                   help="compacted every hour while written, then measured as written")
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="compaction-"))
    work.mkdir(parents=True, exist_ok=True)
    w = world(work, args.accounts, args.days)
    items = events(w / "events.jsonl")
    named = Counter(s for it in items for s in it[3])
    subject, count = named.most_common(1)[0]
    live = (work / f"live-{args.accounts}-{args.days}-{args.step:g}{'-lean' * args.lean}"
            f"{'-hourly' * args.hourly}")
    if not live.exists():
        t0 = time.perf_counter()
        cpu = write_live(items, live, args.step, args.lean, args.hourly)
        print(f"live-like archive written in {time.perf_counter() - t0:.0f} s"
              + (f"; hourly compactions {cpu:.1f} CPU s = {cpu / len(items) * 1e6:.1f} CPU s "
                 "per million events" if args.hourly else ""), file=sys.stderr)
    n = len(items)
    del items, named
    out = work / "compacted"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(live, out)
    store = open_store(str(out))
    if checkpoint.latest(store) is None:  # written before checkpoints: as a daemon leaves it
        checkpoint.write(store, checkpoint.contents(store), "daemon-0")
    now = "as written" if args.hourly else "before"  # hourly: compacted while written
    rows = [(f"{now} (manifest read whole)", measure(store, subject, args.repeat, whole=True)),
            (now, measure(store, subject, args.repeat))]
    for grace in () if args.hourly else (args.grace_hours, 0.0):  # then every day too
        t0, c0 = time.perf_counter(), time.process_time()
        done = compact(store, f"compact-bench-{grace:g}", grace_seconds=grace * 3600)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append((f"after grace {grace:g} h", measure(store, subject, args.repeat)))
        compacted = sum(p.rows + p.duplicates for p in done)
        print(f"compaction, grace {grace:g} h: {len(done)} partitions, "
              f"{sum(p.segments_before for p in done):,} segments, {compacted:,} rows read, "
              f"{wall:.1f} s wall, {cpu:.1f} s CPU = "
              f"{cpu / max(compacted, 1) * 1e6:.1f} CPU s per million events")
    assert all(m[4] == count for _label, m in rows), [(label, m[4]) for label, m in rows]
    show(args, n, count, rows)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
