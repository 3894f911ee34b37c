"""Every look into the archive about a person or an alert is written to the audit trail.

The archive holds personal data; reading it for a right-of-access request or a breach
investigation is itself an act to account for. Each ``subject-report`` and ``evidence`` run
appends one entry to a hash-chained audit trail (:class:`watchdog.audit.AuditTrail`): who ran it
(the OS user), when, the command, the archive, and the subject's *pseudonym* or the alert id,
never the raw subject id.

Which trail: ``--audit PATH``, else ``$WATCHDOG_AUDIT_TRAIL``, else ``_audit/access.jsonl``
inside a local archive, else ``$XDG_STATE_HOME/watchdog/archive-access.jsonl``.
"""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path
from typing import Any

import orjson

from watchdog.alerts.model import now_rfc3339
from watchdog.archive.store import Store
from watchdog.audit import AuditTrail

AUDIT_ENV = "WATCHDOG_AUDIT_TRAIL"


def trail_path(explicit: str | None, store: Store) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get(AUDIT_ENV):
        return Path(os.environ[AUDIT_ENV])
    if store.is_local:
        return Path(store.base) / "_audit" / "access.jsonl"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "watchdog" / "archive-access.jsonl"


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{user} (via sudo by {sudo})" if sudo and sudo != user else user


def record_access(path: Path, command: str, store: Store, **details: Any) -> tuple[int, str]:
    """Append the entry; returns the trail's new head (seq, hash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"kind": "archive_access", "command": command, "by": _who(),
             "host": socket.gethostname(), "at": now_rfc3339(), "archive": store.uri,
             **{k: v for k, v in details.items() if v is not None}}
    with AuditTrail(path) as trail:
        trail.append(orjson.dumps(entry))
        return trail.head()
