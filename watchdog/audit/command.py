"""``watchdog verify-audit FILE``: check an audit trail's chain and its head.

Archive access records (each ``subject-report`` and ``evidence`` run, chained into the same
trail) are counted and checked: who, when, which command, about whom (a pseudonym only).
Exit 0 when intact, 1 with one line naming the first problem, 2 for a usage error (no such
file, unreadable key). The head is required unless ``--no-head`` (a truncated tail is then
unseen); a keyed trail needs its key (``--key-file``, e.g. the credential ``audit-key``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from watchdog.audit.trail import head_path, verify


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="audit trail JSONL (its head FILE.head is checked too)")
    parser.add_argument("--head", help="a separately kept copy of the head (default FILE.head)")
    parser.add_argument("--no-head", action="store_true",
                        help="check without a head (a truncated tail then goes unseen)")
    parser.add_argument("--require-head", action="store_true",
                        help=argparse.SUPPRESS)  # the default now; kept for old scripts
    parser.add_argument("--key-file",
                        help="the HMAC key of a keyed trail (e.g. $CREDENTIALS_DIRECTORY/"
                             "audit-key)")


def _fail(msg: str) -> int:
    print(f"watchdog: error: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        return _fail(f"{path}: no such file")
    head = Path(args.head) if args.head else None
    if head is not None and not head.is_file():
        return _fail(f"--head {head}: no such file")
    key = None
    if args.key_file:
        try:
            key = Path(args.key_file).read_bytes().removesuffix(b"\n").removesuffix(b"\r")
        except OSError as err:
            return _fail(f"--key-file {args.key_file}: cannot read: {err.strerror}")
        if not key:
            return _fail(f"--key-file {args.key_file}: empty")
    result = verify(path, head, require_head=not args.no_head, key=key)
    if not result.ok:
        print(f"{path}: {result.problem}")
        return 1
    if head is None and not head_path(path).exists():
        print(f"watchdog: warning: no head file {head_path(path)}: a truncated tail cannot be "
              "detected", file=sys.stderr)
    if result.note:
        print(f"watchdog: warning: {path}: {result.note}", file=sys.stderr)
    what = f"{result.lines} alerts"
    if result.accesses:
        what = (f"{result.lines} entries ({result.accesses} archive access record(s): "
                "subject-report, evidence)")
    print(f"ok: {what}, chain intact{' (keyed)' if key else ''}")
    return 0
