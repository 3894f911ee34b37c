"""``watchdog replay --archive``: the archive's documents back as the files replay reads.

Each dataset's ``raw`` column (the documents byte for byte as they arrived) is written to a
temporary JSONL file, events in event-time order within ``--from``/``--to`` and every record
(the state at any time needs all of them), then the ordinary replay runs over those files: the
same engine, the same alerts as a replay of the original files.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from watchdog.archive.layout import ACCOUNTS, DIRECTORY, EVENTS, SUBJECTS
from watchdog.archive.reader import ArchiveQuery, parse_time
from watchdog.archive.store import ArchiveLocationError, open_store

_FETCH = 20_000


def export(q: ArchiveQuery, dataset: str, path: Path, first: datetime | None = None,
           last: datetime | None = None) -> int:
    """Write ``dataset``'s documents in (time, id) order; returns how many."""
    where, params = [], list[object]()
    if first is not None:
        where.append("ts >= ?")
        params.append(first)
    if last is not None:
        where.append("ts < ?")
        params.append(last)
    cond = f"WHERE {' AND '.join(where)}" if where else ""
    cur = q.con.execute(f"SELECT raw FROM {dataset} {cond} ORDER BY ts, id",  # noqa: S608
                        params)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        while rows := cur.fetchmany(_FETCH):
            f.write("".join(r[0] + "\n" for r in rows))
            n += len(rows)
    return n


def replay_archive(args: argparse.Namespace, replay: Callable[[argparse.Namespace], int]) -> int:
    """Run ``replay(args)`` over the archive's files instead of ``--events`` etc."""
    given = [f"--{k}" for k in ("events", "directory", "subjects", "accounts")
             if getattr(args, k, None)]
    if given:
        print(f"watchdog: error: --archive replaces {', '.join(given)}", file=sys.stderr)
        return 2
    try:
        first = parse_time(args.first) if args.first else None
        last = parse_time(args.last) if args.last else None
        q = ArchiveQuery(open_store(args.archive), first=first, last=last)
    except (ArchiveLocationError, ValueError, OSError) as err:
        print(f"watchdog: error: {err}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="watchdog-replay-") as tmp:
        paths = {}
        for ds in (EVENTS, DIRECTORY, SUBJECTS, ACCOUNTS):
            p = Path(tmp) / f"{ds}.jsonl"
            n = export(q, ds, p, first, last) if ds == EVENTS else export(q, ds, p)
            if n or ds == EVENTS:
                paths[ds] = str(p)
        q.close()
        args.events = paths[EVENTS]
        args.directory = paths.get(DIRECTORY)
        args.subjects = paths.get(SUBJECTS)
        args.accounts = paths.get(ACCOUNTS)
        args.archive = None
        return replay(args)
