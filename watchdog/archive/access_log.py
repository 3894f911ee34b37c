"""Every look into the archive about a person or an alert is written to the daemon's audit trail.

The archive holds personal data; reading it for a right-of-access request or a breach
investigation is itself an act to account for. Each ``subject-report`` and ``evidence`` run
appends one entry, before anything is read, to the same hash-chained (and, with the key,
HMAC-keyed) audit trail as the daemon's alerts (:mod:`watchdog.audit`), also while the daemon
runs (it owns the trail; this is a short-lived appender): who ran it (the OS user), when, on
which host, the command, the archive, and the subject's *pseudonym* or the alert id, never the
raw subject id. ``watchdog verify-audit`` checks these entries with the chain.

Which trail: ``--audit PATH``, else ``$WATCHDOG_AUDIT_TRAIL``, else the daemon's configuration
(``--config``: ``sinks.audit.path``). The key: ``$WATCHDOG_AUDIT_KEY``, else the credential
``audit-key`` (``$CREDENTIALS_DIRECTORY``), else ``sinks.audit.key`` of ``--config``; a keyed
trail refuses an entry without its key (and the command then refuses to run). Only when no
trail is named at all is the access recorded in a trail of its own (``_audit/access.jsonl``
inside a local archive, else ``$XDG_STATE_HOME/watchdog/archive-access.jsonl``), with a warning.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from watchdog.alerts.model import now_rfc3339
from watchdog.archive.store import Store
from watchdog.audit import AuditTrail

AUDIT_ENV = "WATCHDOG_AUDIT_TRAIL"
KEY_ENV = "WATCHDOG_AUDIT_KEY"


@dataclass(frozen=True)
class Trail:
    path: Path
    key: bytes | None
    own: bool  # a trail of the commands' own: no daemon trail was named


def trail_of(explicit: str | None, config: str | None, store: Store) -> Trail:
    """The trail (and key) that records this run; raises ValueError for a bad ``--config``."""
    from watchdog.systemd import credentials_as_env

    env = {**credentials_as_env([KEY_ENV]), **os.environ}
    key = env.get(KEY_ENV) or None
    path = explicit or env.get(AUDIT_ENV) or None
    if config:
        from watchdog.daemon.config import ConfigError, load_config

        try:
            cfg = load_config(config, env=env)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        audit = cfg.sinks.audit
        if audit is not None:
            path = path or audit.path
            key = key or audit.key
        elif path is None:
            raise ValueError(f"{config}: no sinks.audit (the daemon keeps no audit trail to "
                             "record this access in)")
    if path:
        return Trail(Path(path), key.encode() if key else None, own=False)
    if store.is_local:
        own = Path(store.base) / "_audit" / "access.jsonl"
    else:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        own = Path(state) / "watchdog" / "archive-access.jsonl"
    return Trail(own, key.encode() if key else None, own=True)


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{user} (via sudo by {sudo})" if sudo and sudo != user else user


def record_access(trail: Trail, command: str, store: Store, **details: Any) -> tuple[int, str]:
    """Append the entry; returns its (seq, hash)."""
    if trail.own:
        print(f"watchdog: warning: no audit trail named (--config, --audit or {AUDIT_ENV}): "
              f"this access is recorded in {trail.path}, not in the daemon's trail",
              file=sys.stderr)
    trail.path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"kind": "archive_access", "command": command, "by": _who(),
             "host": socket.gethostname(), "at": now_rfc3339(), "archive": store.uri,
             **{k: v for k, v in details.items() if v is not None}}
    with AuditTrail(trail.path, key=trail.key, owner=False) as t:
        t.append(orjson.dumps(entry))
        return t.head()
