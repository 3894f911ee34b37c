"""``watchdog archive write|verify|prune|compact``: build, check, trim and compact an archive
offline.

``write`` reads JSONL files exactly as ``watchdog replay`` does (same decoder: a bad line is
reported, written to ``*.rejected.jsonl``, and not archived) and appends them to the archive,
skipping documents it already holds. ``verify`` exits 1 and names every problem.
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from watchdog.archive.documents import keyer
from watchdog.archive.layout import ACCOUNTS, ALERTS, DIRECTORY, EVENTS, SUBJECTS
from watchdog.archive.store import ArchiveLocationError, open_store
from watchdog.archive.writer import SEGMENT_ROWS, ArchiveWriter
from watchdog.decode import Rejection
from watchdog.files.jsonl import InputError, RejectedWriter, lines


def _fail(msg: str) -> int:
    print(f"watchdog: error: {msg}", file=sys.stderr)
    return 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="archive_command", required=True)
    w = sub.add_parser("write", help="archive JSONL files (events, records, alerts)")
    w.add_argument("--events", required=True, help="access events JSONL ('-' stdin, .gz ok)")
    w.add_argument("--directory", help="directory records JSONL")
    w.add_argument("--subjects", help="subject-register records JSONL")
    w.add_argument("--accounts", help="account records JSONL")
    w.add_argument("--alerts", help="alerts JSONL (e.g. from watchdog replay)")
    w.add_argument("--out", required=True,
                   help="archive: a directory, or s3://bucket/prefix[?endpoint=URL&region=R]")
    w.add_argument("--writer", default=f"write-{socket.gethostname()}",
                   help="this writer's manifest chain (one writer per id at a time)")
    w.add_argument("--segment-rows", type=int, default=SEGMENT_ROWS,
                   help="rows of one day per segment (default %(default)s)")
    w.set_defaults(archive_func=_write)
    v = sub.add_parser("verify", help="check every segment and the manifest chains")
    v.add_argument("archive")
    v.set_defaults(archive_func=_verify)
    r = sub.add_parser("prune", help="drop whole days older than the retention")
    r.add_argument("archive")
    r.add_argument("--retention-days", type=int,
                   help="days to keep (default: the policy's longest category retention)")
    r.add_argument("--policy", help="policy YAML/JSON (default: the embedded default policy)")
    r.add_argument("--writer", default=f"prune-{socket.gethostname()}")
    r.set_defaults(archive_func=_prune)
    c = sub.add_parser("compact", help="rewrite the small segments of closed partitions as one")
    c.add_argument("archive")
    c.add_argument("--grace-hours", type=float, default=1.0,  # compact.GRACE
                   help="a day is closed this long after its end, in event time "
                        "(default %(default)s)")
    # one name, not the host's: a Kubernetes CronJob's pod is named anew at every run, and a
    # run cleans what a crash of the chain's previous run left
    c.add_argument("--writer", default="compact",
                   help="the compactor's manifest chain (one compactor at a time; "
                        "default %(default)s)")
    c.add_argument("--segment-rows", type=int, default=SEGMENT_ROWS,
                   help="rows per compacted segment at most (default %(default)s)")
    c.set_defaults(archive_func=_compact)


def run(args: argparse.Namespace) -> int:
    code: int = args.archive_func(args)
    return code


def _write(args: argparse.Namespace) -> int:
    inputs = [(EVENTS, args.events), (DIRECTORY, args.directory), (SUBJECTS, args.subjects),
              (ACCOUNTS, args.accounts), (ALERTS, args.alerts)]
    for ds, path in inputs:
        if path and path != "-" and (not Path(path).exists() or Path(path).is_dir()):
            return _fail(f"--{ds} {path}: no such file")
    try:
        store = open_store(args.out, create=True)
        writer = ArchiveWriter(store, args.writer, segment_rows=args.segment_rows)
    except (ArchiveLocationError, ValueError, OSError) as err:
        return _fail(f"{args.out}: {err}")
    out_name = Path(store.base).name if store.is_local else "archive"
    rejected = RejectedWriter(Path(f"{out_name}.rejected.jsonl") if not store.is_local
                              else Path(store.base + ".rejected.jsonl"))
    counts: dict[str, int] = {}
    try:
        for ds, path in inputs:
            if not path:
                continue
            key = keyer(ds)
            n = 0
            for line, raw in lines(path):
                got = key(raw)
                if isinstance(got, Rejection):
                    _reject(rejected, path, line, got)
                    continue
                if isinstance(got, str):
                    _reject(rejected, path, line, Rejection("invalid_value", got, raw))
                    continue
                if writer.add(ds, got[0], got[1], raw, got[2]):
                    n += 1
                if writer.pending >= 2 * args.segment_rows or writer.full():
                    writer.flush()
            counts[ds] = n
        segments = writer.flush()
    except InputError as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"{args.out}: write failed: {err}")
    finally:
        rejected.close()
    done = ", ".join(f"{n} {ds}" for ds, n in counts.items())
    bad = f", {rejected.count} rejected: {rejected.path}" if rejected.count else ""
    print(f"watchdog: archived {done} in {store.uri} ({writer.duplicates} already there{bad}; "
          f"{len(segments)} segments, manifest {args.writer} at entry {writer.manifest.seq})",
          file=sys.stderr)
    return 0


def _reject(rejected: RejectedWriter, path: str, line: int, rej: Rejection) -> None:
    if rejected.count < 20:
        print(f"watchdog: rejected {path}:{line}: {rej.reason}: {rej.detail}", file=sys.stderr)
    rejected.write(path, line, rej)


def _verify(args: argparse.Namespace) -> int:
    from watchdog.archive.verify import verify

    try:
        store = open_store(args.archive)
        report = verify(store)
    except (ArchiveLocationError, OSError) as err:
        return _fail(f"{args.archive}: {err}")
    for problem in report.problems:
        print(f"{args.archive}: {problem}")
    status = "ok" if report.ok else f"FAILED ({len(report.problems)} problem(s))"
    print(f"{args.archive}: {status}: {report.segments} segments, {report.rows} rows, "
          f"{report.entries} manifest entries", file=sys.stderr if report.ok else sys.stdout)
    for ds, n in report.copies.items():
        print(f"{args.archive}: note: {n} {ds} row(s) repeat an id stored already (two writers "
              "at once); every query reads each id once", file=sys.stderr)
    return 0 if report.ok else 1


def _prune(args: argparse.Namespace) -> int:
    from watchdog.archive.retention import default_retention_days, prune
    from watchdog.policy import PolicyError, load_policy

    days = args.retention_days
    if days is None:
        try:
            days = default_retention_days(load_policy(args.policy))
        except PolicyError as err:
            return _fail(str(err))
    if days is None or days <= 0:
        return _fail("no retention: give --retention-days N (the policy sets none)")
    try:
        store = open_store(args.archive)
        dropped = prune(store, args.writer, days)
    except (ArchiveLocationError, OSError, ValueError) as err:
        return _fail(f"{args.archive}: {err}")
    shown = ", ".join(dropped[:10]) + (f" and {len(dropped) - 10} more" if len(dropped) > 10
                                       else "")
    print(f"watchdog: dropped {len(dropped)} day partition(s) older than {days} days"
          + (f": {shown}" if dropped else ""), file=sys.stderr)
    return 0


def _compact(args: argparse.Namespace) -> int:
    from watchdog.archive.compact import compact

    if args.grace_hours < 0 or args.segment_rows <= 0:
        return _fail("--grace-hours must be >= 0 and --segment-rows positive")
    try:
        store = open_store(args.archive)
        done = compact(store, args.writer, grace_seconds=args.grace_hours * 3600,
                       segment_rows=args.segment_rows)
    except (ArchiveLocationError, OSError, ValueError) as err:
        return _fail(f"{args.archive}: {err}")
    for p in done:
        if p.problem:
            print(f"{p.partition}: not compacted: {p.problem}")
        else:
            print(f"{p.partition}: {p.segments_before:,} segments -> {p.segments_after} "
                  f"({p.rows:,} rows, {p.duplicates:,} repeated ids dropped)")
    bad = sum(1 for p in done if p.problem)
    print(f"watchdog: compacted {len(done) - bad} partition(s)"
          + (f", {bad} left alone (damaged: run archive verify)" if bad else ""),
          file=sys.stderr)
    return 1 if bad else 0
