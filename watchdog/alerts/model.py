"""The alert document (``alert.schema.json``) and its canonical encoding.

Text that comes from events (``summary``, ``user_id``, ``event_ids``, label values) may carry
control characters: a newline that forges a second line in a chat message or a log, an ANSI
escape that recolours or hides a terminal's text, a bidi override that shows it reversed. Every
alert escapes them once, where it is built (:meth:`Alert.__post_init__`), so that no sink has
to: ``\\n``, ``\\r``, ``\\t``, else ``\\xNN`` or ``\\uNNNN``, visible and inert.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

# C0 and C1 controls, DEL, line/paragraph separators, bidi marks, embeddings and isolates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e"
                     "\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def safe_text(text: str) -> str:
    """``text`` with its control characters escaped (unchanged, and not copied, if none)."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


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

    def __post_init__(self) -> None:
        unsafe = _UNSAFE.search
        set_ = msgspec.structs.force_setattr  # frozen: only here, while it is being built
        if unsafe(self.summary):
            set_(self, "summary", safe_text(self.summary))
        if unsafe(self.user_id):
            set_(self, "user_id", safe_text(self.user_id))
        if any(unsafe(e) for e in self.event_ids):
            set_(self, "event_ids", tuple(safe_text(e) for e in self.event_ids))
        if any(unsafe(v) for v in self.labels.values()):
            set_(self, "labels", {k: safe_text(v) for k, v in self.labels.items()})


_encoder = msgspec.json.Encoder()


def encode_alert(alert: Alert) -> bytes:
    """Canonical JSON (field order fixed, no spaces): replays compare byte for byte."""
    return _encoder.encode(alert)


def rfc3339(t: float) -> str:
    """Event time as RFC 3339 UTC with milliseconds, e.g. ``2026-11-20T00:15:02.123Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_rfc3339() -> str:
    return rfc3339(datetime.now(UTC).timestamp())
