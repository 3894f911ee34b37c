"""``watchdog subject-report``: answer a right-of-access request from the archive.

Table by default; ``--json``: one JSON object per line, one per access event (``event_id`` is
its ``event.id``), and the rest (register history, erasure, alerts) as one JSON object on
stderr, or in ``--summary FILE``. The run is written to the audit trail (:mod:`.access_log`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import orjson

from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer, key_from_env
from watchdog.archive.access_log import record_access, trail_of
from watchdog.archive.reader import ArchiveQuery, SegmentFormatError, parse_time
from watchdog.archive.report import (
    SubjectReport,
    event_json,
    render_table,
    subject_report,
    summary_json,
)
from watchdog.archive.store import ArchiveLocationError, open_store
from watchdog.audit import AuditError


def _fail(msg: str) -> int:
    print(f"watchdog: error: {msg}", file=sys.stderr)
    return 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--archive", required=True, help="archive directory or s3://bucket/prefix")
    p.add_argument("--subject", required=True, help="the data subject's id")
    p.add_argument("--from", dest="first", help="from this time (RFC 3339 or date), inclusive")
    p.add_argument("--to", dest="last", help="until this time, exclusive")
    p.add_argument("--json", action="store_true", help="one JSON object per event per line")
    p.add_argument("--summary", help="with --json: write register/erasure/alerts here")
    p.add_argument("--config", help="the daemon's watchdog.yaml: this run is recorded in its "
                   "audit trail (sinks.audit)")
    p.add_argument("--audit", help="the audit trail that records this run (default: "
                   "$WATCHDOG_AUDIT_TRAIL, else --config's)")


def pseudonymizer() -> Pseudonymizer:
    from watchdog.systemd import pseudonym_key_from_credentials

    key = key_from_env() or pseudonym_key_from_credentials()
    if key is None:
        print("watchdog: warning: no WATCHDOG_PSEUDONYM_KEY set; alerts are matched with the "
              "public demo key's pseudonyms", file=sys.stderr)
        key = DEMO_KEY
    return Pseudonymizer(key)


def run(args: argparse.Namespace) -> int:
    try:
        first = parse_time(args.first) if args.first else None
        last = parse_time(args.last) if args.last else None
        store = open_store(args.archive)
        trail = trail_of(args.audit, args.config, store)
        pseudonym = pseudonymizer()(args.subject)
    except (ArchiveLocationError, ValueError) as err:
        return _fail(str(err))
    try:
        # the access is recorded before any personal data is shown
        record_access(trail, "subject-report", store,
                      subject=pseudonym, **{"from": args.first, "to": args.last})
    except (AuditError, OSError) as err:
        return _fail(f"cannot write the audit trail, refusing to report: {err}")
    try:
        q = ArchiveQuery(store, first=first, last=last)
        rep = subject_report(q, args.subject, pseudonym, first=first, last=last)
        q.close()
    except (OSError, SegmentFormatError) as err:
        return _fail(f"{args.archive}: {err}")
    try:
        _print(rep, args)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _print(rep: SubjectReport, args: argparse.Namespace) -> None:
    out = sys.stdout
    if not args.json:
        out.write(render_table(rep, args.subject))
        return
    buf = out.buffer
    for e in rep.events:
        buf.write(orjson.dumps(event_json(e, rep.erasure_effective)) + b"\n")
    buf.flush()
    summary = orjson.dumps(summary_json(rep))
    if args.summary:
        Path(args.summary).write_bytes(summary + b"\n")
    else:
        sys.stderr.buffer.write(summary + b"\n")
