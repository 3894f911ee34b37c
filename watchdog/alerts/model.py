"""The alert document (``alert.schema.json``) and its canonical encoding."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType


class AlertSubjects(msgspec.Struct, frozen=True, gc=False):
    count: int
    pseudonyms: tuple[str, ...] = ()


class Alert(msgspec.Struct, frozen=True, gc=False, omit_defaults=False):
    alert_id: str
    rule: str
    severity: str
    ts: str
    user_id: str
    event_ids: tuple[str, ...]
    summary: str
    subjects: AlertSubjects = AlertSubjects(0)
    clauses: tuple[str, ...] = ()
    detected_at: str | UnsetType = UNSET
    score: float | UnsetType = UNSET
    explanation: dict[str, Any] | UnsetType = UNSET
    labels: dict[str, str] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder()


def encode_alert(alert: Alert) -> bytes:
    """Canonical JSON (field order fixed, no spaces): replays compare byte for byte."""
    return _encoder.encode(alert)


def rfc3339(t: float) -> str:
    """Event time as RFC 3339 UTC with milliseconds, e.g. ``2026-11-20T00:15:02.123Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_rfc3339() -> str:
    return rfc3339(datetime.now(UTC).timestamp())
