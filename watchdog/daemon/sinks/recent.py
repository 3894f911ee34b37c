"""The alert ids a file sink appended last: remembered, and read back from its file's tail.

A graceful stop mid-stream leaves the reorder buffer uncommitted, so after the restart the
alerts raised on arrival of those events are sent again with the same ``alert_id``. The audit
and JSONL sinks append one line per alert: at start they seed :class:`RecentIds` with the ids
of their file's last :data:`REMEMBER` lines (:func:`tail_alert_ids`, read backwards from the
end in blocks, never the whole file) and skip an alert they already hold.

A line is an alert document (the JSONL sink) or an audit line whose ``alert`` member is one;
entries that are not alerts (they carry ``kind``: archive accesses, labels) are left out, and
an excused alert written to the audit trail is remembered as ``excused:ALERT_ID``
(:func:`excused_key`). Bytes after the last newline (a torn last line) and lines that do not
decode are left out: they were never acknowledged.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import msgspec

from watchdog.audit.tail import BLOCK, tail

REMEMBER = 10_000  # alert ids of recent appends (a retry, a re-sent alert after a restart)
EXCUSED = "excused:"


def excused_key(alert_id: str) -> str:
    """What an excused alert is remembered as (it is written apart from the alert itself)."""
    return EXCUSED + alert_id


class _Doc(msgspec.Struct):
    alert_id: str | None = None
    kind: str | None = None
    labels: dict[str, object] | None = None


class _Line(_Doc):
    alert: _Doc | None = None  # an audit line's entry


_decode = msgspec.json.Decoder(_Line).decode


def last_lines(path: Path, n: int, *, block: int = BLOCK) -> list[bytes]:
    """The last ``n`` complete lines of ``path`` (:func:`watchdog.audit.tail.tail`); a missing
    file has none."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return []
    try:
        return tail(fd, os.fstat(fd).st_size, n, block=block)[1]
    finally:
        os.close(fd)


def alert_key(line: bytes) -> str | None:
    """The remembered id of one line (see the module); None for a line that is not an alert."""
    try:
        rec = _decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    doc: _Doc = rec.alert if rec.alert is not None else rec
    if doc.kind is not None or doc.alert_id is None:
        return None
    if doc.labels and doc.labels.get("excused_by") == "exception":
        return excused_key(doc.alert_id)
    return doc.alert_id


def tail_alert_ids(path: Path, n: int = REMEMBER) -> list[str]:
    """The remembered ids of the alerts of the last ``n`` lines of ``path``, oldest first."""
    return [k for k in map(alert_key, last_lines(path, n)) if k is not None]


class RecentIds:
    """The last ``limit`` ids added (oldest forgotten first). Not thread-safe."""

    def __init__(self, limit: int = REMEMBER) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> None:
        self._ids[key] = None
        self._ids.move_to_end(key)
        if len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def extend(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def __len__(self) -> int:
        return len(self._ids)
