"""Peak memory of compacting one closed day partition (watchdog/archive/compact.py) of N events.

For each size, a day of N access events (simulated documents, ~380 bytes each, with fresh ids
and times spread over the day) is written as a daemon's writer writes it (format 3, the
default: ``subject_ids`` left to compaction), in segments of ``--segment-events`` (a closed day
after hourly tier merges is a few dozen of them), with ``--copies`` of the events stored twice
(redeliveries); one event of the next day closes it. Then ``compact`` runs in a fresh process
on a copy, which prints its peak RSS (``ru_maxrss``), the RSS before compacting, the peak of
pyarrow's memory pool, wall and CPU seconds. Prints a table; asserts nothing.

    .venv/bin/python bench/bench_compact_memory.py [--sizes 1000000,3000000,10000000]
        [--segment-events 20000] [--copies 0.001] [--work DIR]

Measured 2026-12-08 (2 cores, load 1.3-3.3), peak RSS: read whole (before), 2,335 / 5,310 MB
at 1M / 3M events and a failure at 10M (``offset overflow``: over 2 GiB of documents in one
string column) after 19 s and 5,855 MB; sorted on disk above 250k rows (DuckDB, 512 MB),
1,260 / 1,304 / 1,408 MB at 1M / 3M / 10M (6.3 / 21.7 / 86 s; spill 213 / 1,127 / 5,339 MB).

The generated archives are kept under ``--work`` (default: a fresh temporary directory,
deleted at the end) and reused when present.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = 1_798_761_600.0  # 2027-01-01T00:00:00Z: the partition compacted


def _templates() -> list[tuple[bytes, bytes, bytes]]:
    """Simulated access events split around their timestamp and id (filled in per event)."""
    import orjson

    from bench.archive_cost.traffic import bench_world

    _world, raws = bench_world(5000)
    out = []
    for raw in raws:
        d = orjson.loads(raw)
        d["@timestamp"], d["event"]["id"] = "\x00", "\x01"
        a, rest = orjson.dumps(d).split(b'"\\u0000"')
        b, c = rest.split(b'"\\u0001"')
        out.append((a, b, c))
    return out


def generate(out: Path, n: int, segment_events: int, copies: float) -> None:
    """The day of ``n`` events (plus copies) as segments recorded in one writer's chain."""
    from datetime import UTC, datetime

    import numpy as np

    from watchdog.archive import manifest as mf
    from watchdog.archive.layout import EVENTS, day_of_epoch, segment_dir, to_table
    from watchdog.archive.segment import write_segment
    from watchdog.archive.store import open_store

    store = open_store(str(out), create=True)
    chain = mf.ManifestWriter(store, "daemon-0")
    parts = _templates()
    rng = np.random.default_rng(7)
    times = np.sort(rng.uniform(DAY, DAY + 86_400, n))
    day = day_of_epoch(DAY)
    every = int(1 / copies) if copies > 0 else 0

    def doc(k: int, t: float) -> tuple[str, bytes]:
        a, b, c = parts[k % len(parts)]
        ts = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
        doc_id = f"ev-{k:010d}"
        return doc_id, b"".join((a, b'"', ts, b'"', b, b'"', doc_id.encode(), b'"', c))

    seq = 0
    for start in range(0, n, segment_events):
        ks = list(range(start, min(n, start + segment_events)))
        if every and start:  # redelivered copies of the previous segment's events
            ks += list(range(start - segment_events, start, every))
        docs = [doc(k, float(times[k])) for k in ks]
        seq += 1
        path = f"{segment_dir(EVENTS, day)}/daemon-0-{seq:012d}-0000.parquet"
        table = to_table(EVENTS, [d[0] for d in docs], [float(times[k]) for k in ks],
                         [d[1] for d in docs], None, lean=True)
        seg = write_segment(store, path, EVENTS, day, table)
        chain.append("segments", segments=[seg.as_dict()])
    # the next day's first event: the day is closed (its end an hour before it, the grace)
    k, t = n, DAY + 86_400 + 7200
    doc_id, raw = doc(k, t)
    nxt = day_of_epoch(t)
    seg = write_segment(store, f"{segment_dir(EVENTS, nxt)}/daemon-0-{seq + 1:012d}-0000.parquet",
                        EVENTS, nxt, to_table(EVENTS, [doc_id], [t], [raw], None, lean=True))
    chain.append("segments", segments=[seg.as_dict()])


def run_compaction(archive: Path) -> dict[str, float]:
    """``compact`` of the archive, in this (fresh) process: its numbers."""
    import pyarrow as pa

    from watchdog.archive.compact import compact
    from watchdog.archive.store import open_store

    store = open_store(str(archive))
    spilled = [0]
    stop = threading.Event()
    threading.Thread(target=_watch_spill, args=(spilled, stop), daemon=True).start()
    rss0 = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    failed = ""
    try:
        done = compact(store, "compact")
    except Exception as err:  # e.g. more than 2 GiB of documents in one string column
        failed, done = f"{type(err).__name__}: {str(err)[:60]}", []
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    return {"failed": failed, "rss_before_mb": rss0, "spill_mb": spilled[0] / 2**20,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "arrow_peak_mb": pa.default_memory_pool().max_memory() / 2**20,
            "wall_s": wall, "cpu_s": cpu,
            "rows": sum(p.rows for p in done), "duplicates": sum(p.duplicates for p in done),
            "segments_before": sum(p.segments_before for p in done),
            "segments_after": sum(p.segments_after for p in done)}


def _watch_spill(peak: list[int], stop: threading.Event) -> None:
    """The most bytes compaction's temporary directories held (polled every 0.2 s)."""
    top = Path(tempfile.gettempdir())
    while not stop.wait(0.2):
        size = 0
        for d in top.glob("watchdog-compact-*"):
            for f in d.rglob("*"):
                with contextlib.suppress(OSError):
                    size += f.stat().st_size
        peak[0] = max(peak[0], size)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000000,3000000,10000000")
    p.add_argument("--segment-events", type=int, default=20_000)
    p.add_argument("--copies", type=float, default=0.001)
    p.add_argument("--work", type=Path)
    p.add_argument("--child", choices=("generate", "compact"), help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "generate":
        generate(args.dir, args.n, args.segment_events, args.copies)
        return 0
    if args.child == "compact":
        print(json.dumps(run_compaction(args.dir)))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="compact-memory-"))
    rows = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            src = work / f"day-{n}-{args.segment_events}-{args.copies:g}"
            me = [sys.executable, __file__, "--segment-events", str(args.segment_events),
                  "--copies", str(args.copies)]
            if not (src / "_manifest").exists():
                t0 = time.perf_counter()
                shutil.rmtree(src, ignore_errors=True)
                subprocess.run([*me, "--child", "generate", "--dir", str(src), "--n", str(n)],
                               check=True)
                print(f"{n:,} events generated in {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr)
            run = work / "run"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(src, run)
            out = subprocess.run([*me, "--child", "compact", "--dir", str(run)], check=True,
                                 capture_output=True, text=True).stdout
            rows.append((n, json.loads(out.strip().splitlines()[-1])))
            shutil.rmtree(run, ignore_errors=True)
            m = rows[-1][1]
            print(f"{n:,}: peak RSS {m['peak_rss_mb']:,.0f} MB", file=sys.stderr)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"one closed day compacted (segments of {args.segment_events:,} events, "
          f"{args.copies:g} stored twice; format 3 in, format 1 out)")
    print(f"{'events':>12} {'segments':>13} {'peak RSS MB':>12} {'RSS before':>11} "
          f"{'arrow peak MB':>14} {'spill MB':>9} {'wall s':>7} {'CPU s':>7} {'dropped':>8}")
    for n, m in rows:
        print(f"{n:>12,} {m['segments_before']:>6,.0f} -> {m['segments_after']:<3,.0f} "
              f"{m['peak_rss_mb']:>12,.0f} {m['rss_before_mb']:>11,.0f} "
              f"{m['arrow_peak_mb']:>14,.0f} {m['spill_mb']:>9,.0f} {m['wall_s']:>7.1f} "
              f"{m['cpu_s']:>7.1f} "
              f"{m['duplicates']:>8,.0f}")
    for n, m in rows:
        if m["failed"]:
            print(f"{n:,} events: compaction failed after {m['wall_s']:.0f} s: {m['failed']}")
    print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
