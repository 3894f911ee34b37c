"""Which dataset a document goes to, its id in the archive and its event time.

Access events are identified by ``event.id`` (the contract's deduplication key) and alerts by
``alert_id``. A record has no id of its own: its key, ``effective`` and a hash of its bytes, so
that a redelivered record is archived once while a correction (same key and time, other
content) is kept beside the original.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from watchdog.archive.layout import ACCOUNTS, ALERTS, DIRECTORY, EVENTS, SUBJECTS
from watchdog.decode import Decoder, Rejection
from watchdog.events import (
    AccessEvent,
    AccountRecord,
    DirectoryRecord,
    SubjectRecord,
    check_times,
)


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


Key = tuple[str, float, tuple[str, ...]]  # id, event time, subject ids (events only)


def event_key(ev: AccessEvent) -> Key:
    return ev.event.id, ev.timestamp.timestamp(), ev.data.subject_ids


def record_key(rec: DirectoryRecord | SubjectRecord | AccountRecord, raw: bytes) -> Key:
    key = f"{rec.subject_id}/{rec.type}" if isinstance(rec, SubjectRecord) else rec.user_id
    return f"{key}/{rec.effective.isoformat()}/{_digest(raw)}", rec.effective.timestamp(), ()


class _AlertHead(msgspec.Struct, gc=False):
    alert_id: Any
    ts: Any


_alert_head = msgspec.json.Decoder(_AlertHead)


def alert_key(raw: bytes) -> Key | str:
    """(alert_id, ts) of an alert document, or why it is not one."""
    try:
        head = _alert_head.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        return f"not an alert: {str(err)[:100]}"
    if not isinstance(head.alert_id, str) or not isinstance(head.ts, str):
        return "not an alert: alert_id and ts must be strings"
    try:
        ts = datetime.fromisoformat(head.ts)
    except ValueError:
        return "not an alert: ts is not RFC 3339"
    if ts.tzinfo is None:
        return "not an alert: ts has no offset"
    return head.alert_id, ts.timestamp(), ()


Keyer = Callable[[bytes], "Key | Rejection | str"]


def keyer(dataset: str) -> Keyer:
    """bytes -> (id, event time, subject ids), or a Rejection/reason for a document that is
    not valid."""
    if dataset == ALERTS:
        return alert_key
    if dataset == EVENTS:
        dec: Decoder[Any] = Decoder(AccessEvent, check=check_times)

        def of_event(raw: bytes) -> Key | Rejection:
            doc = dec.decode(raw)
            return doc if isinstance(doc, Rejection) else event_key(doc)

        return of_event
    types: dict[str, type] = {DIRECTORY: DirectoryRecord, SUBJECTS: SubjectRecord,
                              ACCOUNTS: AccountRecord}
    rdec: Decoder[Any] = Decoder(types[dataset], check=check_times)

    def of_record(raw: bytes) -> Key | Rejection:
        doc = rdec.decode(raw)
        return doc if isinstance(doc, Rejection) else record_key(doc, raw)

    return of_record
