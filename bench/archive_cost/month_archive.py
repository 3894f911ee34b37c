"""The archive subject-report is timed over (steps 2 and 3 of bench/bench_archive.py): a
simulated month written by ``watchdog archive write``, its size against the JSONL, and the
month's segments copied a month later each time until ``--big`` events."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.archive_cost import ROOT
from watchdog.archive import manifest as mf
from watchdog.archive.segment import encode_segment
from watchdog.archive.store import open_store


def month(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path, int]:
    """The month of a 2,000-account organisation: JSONL, and its archive."""
    d = tmp / "month"
    subprocess.run([sys.executable, "-m", "watchdog", "simulate", "--out", str(d),
                    "--accounts", str(args.month_accounts), "--days", "30"], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    events = d / "events.jsonl"
    out = tmp / "month-archive"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "watchdog", "archive", "write", "--events",
                    str(events), "--subjects", str(d / "subjects.jsonl"), "--out", str(out)],
                   check=True, cwd=ROOT)
    print(f"archive write of the month: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    n = sum(1 for _ in events.open("rb"))
    return d, out, n


def grow(archive: Path, target: int) -> int:
    """Copy the month's event segments, shifted by whole months, until ``target`` rows."""
    store = open_store(str(archive))
    base = mf.contents(store).of("events")
    rows = sum(s.rows for s in base)
    chain = mf.ManifestWriter(store, "bench-grow")
    k = 0
    while rows < target:
        k += 1
        segs = []
        for s in base:
            t = pq.read_table(store.path(s.path))
            shift = timedelta(days=31 * k)
            t = t.set_column(0, "id", pc.binary_join_element_wise(t["id"], pa.scalar(f"~{k}"),
                                                                  ""))
            t = t.set_column(1, "ts", pc.add(t["ts"], pa.scalar(shift)))
            day = (datetime.fromisoformat(s.day) + shift).strftime("%Y-%m-%d")
            data = encode_segment(t)
            path = f"events/day={day}/bench-grow-{k:04d}-{s.path.rsplit('-', 1)[1]}"
            store.write_bytes(path, data)
            first = (datetime.fromisoformat(s.first) + shift).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            last = (datetime.fromisoformat(s.last) + shift).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            segs.append(mf.Segment(path, "events", day, t.num_rows, len(data),
                                   hashlib.sha256(data).hexdigest(), first, last).as_dict())
            rows += t.num_rows
            if rows >= target:
                break
        chain.append("segments", segments=segs)
    return rows


def size_rows(out: Path, events: Path, n: int) -> list[tuple[str, str]]:
    store = open_store(str(out))
    segs = mf.contents(store).of("events")
    parquet = sum(s.bytes for s in segs)
    jsonl = events.stat().st_size
    return [("archive size per million events (Parquet, zstd, raw kept)",
             f"{parquet / n * 1e6 / 2**20:,.0f} MiB (JSONL: {jsonl / n * 1e6 / 2**20:,.0f} "
             f"MiB; {n:,} events in {len(segs)} segments)")]
