"""``watchdog evidence --archive ARCHIVE ALERT_ID --out BUNDLE_DIR`` (see :mod:`.evidence`).

The run is written to the audit trail (:mod:`.access_log`) before anything is read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from watchdog.archive.access_log import record_access, trail_of
from watchdog.archive.evidence import EvidenceError, build
from watchdog.archive.reader import ArchiveQuery, SegmentFormatError
from watchdog.archive.store import ArchiveLocationError, open_store
from watchdog.audit import AuditError


def _fail(msg: str) -> int:
    print(f"watchdog: error: {msg}", file=sys.stderr)
    return 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--archive", required=True, help="archive directory or s3://bucket/prefix")
    p.add_argument("alert_id", help="the alert's alert_id")
    p.add_argument("--out", required=True, help="bundle directory (created; must be empty)")
    p.add_argument("--policy", help="the policy file in force (copied, with its SHA-256)")
    p.add_argument("--audit-trail", help="the daemon's alert audit trail (sinks.audit.path)")
    p.add_argument("--config", help="the daemon's watchdog.yaml: this run is recorded in its "
                   "audit trail (sinks.audit)")
    p.add_argument("--audit", help="the audit trail that records this run (default: "
                   "$WATCHDOG_AUDIT_TRAIL, else --config's)")


def run(args: argparse.Namespace) -> int:
    for label, path in (("--policy", args.policy), ("--audit-trail", args.audit_trail)):
        if path and not Path(path).is_file():
            return _fail(f"{label} {path}: no such file")
    try:
        store = open_store(args.archive)
        trail = trail_of(args.audit, args.config, store)
    except (ArchiveLocationError, ValueError) as err:
        return _fail(str(err))
    try:
        record_access(trail, "evidence", store, alert=args.alert_id)
    except (AuditError, OSError) as err:
        return _fail(f"cannot write the audit trail, refusing to read the archive: {err}")
    try:
        q = ArchiveQuery(store)
        summary = build(q, args.alert_id, Path(args.out),
                        policy=Path(args.policy) if args.policy else None,
                        audit_trail=Path(args.audit_trail) if args.audit_trail else None)
        q.close()
    except EvidenceError as err:
        return _fail(str(err))
    except SegmentFormatError as err:
        return _fail(f"{args.archive}: {err}")
    except OSError as err:
        return _fail(f"{args.out}: {err}")
    print(f"watchdog: evidence for {args.alert_id} ({summary['rule']}): "
          f"{summary['events_in_archive']}/{summary['events_cited']} cited events, "
          f"{summary['subjects']['count']} subject(s) -> {args.out}", file=sys.stderr)
    return 0
