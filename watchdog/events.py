"""Typed documents of the contract: access events, directory and subject-register records.

msgspec Structs mirror the JSON Schemas in ``watchdog/schemas`` (copies of the contract);
decoding into them *is* the validation (types, enums, lengths, RFC 3339 with offset), at
about 1 us per event. Optional fields default to ``UNSET`` (falsy), not ``None``, so that an
explicit ``null`` is rejected exactly as the schema rejects it. ``gc=False``: these hold no
reference cycles, and keeping the collector away from millions of short-lived objects is
measurable (see bench/).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
NonEmpty256 = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
NonEmptyList = Annotated[tuple[str, ...], msgspec.Meta(min_length=1)]

Action = Literal[
    "login", "logout", "read", "search", "create", "update", "delete", "export",
    "download", "copy", "print", "transfer", "email", "share", "privilege_change",
]
Outcome = Literal["success", "failure", "unknown"]
Category = Literal[
    "identity", "contact", "address", "payment", "my_number", "location", "purchase",
    "behavior", "device", "health", "preferences", "employment", "minor", "credentials",
]
DestinationKind = Literal[
    "internal", "external_media", "email", "third_party", "cloud_storage", "print",
    "authority",  # 1.1: a public body (police, court, tax office)
]
Country = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]


class EventInfo(msgspec.Struct, frozen=True, gc=False):
    id: NonEmpty256
    action: Action
    outcome: Outcome = "success"
    dataset: Annotated[str, msgspec.Meta(max_length=256)] | UnsetType = UNSET
    sequence: NonNegative | UnsetType = UNSET


class User(msgspec.Struct, frozen=True, gc=False):
    id: NonEmpty256
    name: str | UnsetType = UNSET
    roles: tuple[str, ...] | UnsetType = UNSET


class Source(msgspec.Struct, frozen=True, gc=False):
    ip: str | UnsetType = UNSET


class Host(msgspec.Struct, frozen=True, gc=False):
    name: str | UnsetType = UNSET


class Data(msgspec.Struct, frozen=True, gc=False):
    resource: Annotated[str, msgspec.Meta(max_length=1024)] | UnsetType = UNSET
    categories: tuple[Category, ...] = ()
    subject_ids: Annotated[tuple[str, ...], msgspec.Meta(max_length=100_000)] = ()
    subject_count: NonNegative | UnsetType = UNSET
    records: NonNegative | UnsetType = UNSET
    bytes: NonNegative | UnsetType = UNSET
    purpose: str | UnsetType = UNSET
    anonymized: bool = False
    collected_at: AwareTime | UnsetType = UNSET
    # 1.1: the law or order a disclosure to an authority rests on
    legal_basis: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | UnsetType = UNSET

    @property
    def subjects(self) -> int:
        """How many subjects were touched: ``subject_count``, defaulting to the ids given."""
        return len(self.subject_ids) if self.subject_count is UNSET else self.subject_count


class Destination(msgspec.Struct, frozen=True, gc=False):
    kind: DestinationKind | UnsetType = UNSET
    domain: str | UnsetType = UNSET
    organization: str | UnsetType = UNSET
    country: Country | UnsetType = UNSET


_NO_DATA = Data()


class AccessEvent(msgspec.Struct, frozen=True, gc=False):
    timestamp: AwareTime = msgspec.field(name="@timestamp")
    event: EventInfo
    user: User
    source: Source | UnsetType = UNSET
    host: Host | UnsetType = UNSET
    data: Data = _NO_DATA
    destination: Destination | UnsetType = UNSET

    @property
    def is_personal(self) -> bool:
        """The contract's "personal-data access": categories, subject ids or a subject count."""
        d = self.data
        return bool(d.categories or d.subject_ids or d.subject_count)


DirectoryStatus = Literal["active", "departed", "transferred", "suspended"]


class DirectoryRecord(msgspec.Struct, frozen=True, gc=False):
    user_id: Annotated[str, msgspec.Meta(min_length=1)]
    status: DirectoryStatus
    effective: AwareTime
    roles: tuple[str, ...] | UnsetType = UNSET
    department: str | UnsetType = UNSET
    manager: str | UnsetType = UNSET
    notice_at: AwareTime | UnsetType = UNSET  # 1.1: notice of leaving given


SubjectType = Literal[
    "erasure_requested", "suspension_requested", "restricted", "consent_withdrawn",
    "marketing_opt_out", "consent_granted", "minor", "cleared",
]


class SubjectRecord(msgspec.Struct, frozen=True, gc=False):
    subject_id: Annotated[str, msgspec.Meta(min_length=1)]
    type: SubjectType
    effective: AwareTime
    # consent: which purposes; restricted / suspension_requested (1.1): the scope
    purposes: NonEmptyList | UnsetType = UNSET
    categories: NonEmptyList | UnsetType = UNSET  # 1.1: restriction scope
    resources: NonEmptyList | UnsetType = UNSET  # 1.1: erasure_requested: who must delete


class AccountRecord(msgspec.Struct, frozen=True, gc=False):
    """The identity provider's state of one account (1.1)."""

    user_id: Annotated[str, msgspec.Meta(min_length=1)]
    enabled: bool
    effective: AwareTime
    roles: tuple[str, ...] | UnsetType = UNSET  # absent = none
    password_changed_at: AwareTime | UnsetType = UNSET


# msgspec also reads "2026-11-20 09:15:02Z" and "+0900" offsets, which RFC 3339 (the schemas'
# date-time format) does not allow: the decoder reads the raw stamps once more, as strings (a
# second msgspec pass over small structs; cheaper than any byte scanning in Python).
class _DataStamp(msgspec.Struct, frozen=True, gc=False):
    collected_at: str | UnsetType = UNSET


class _EventStamps(msgspec.Struct, frozen=True, gc=False):
    timestamp: str = msgspec.field(name="@timestamp")
    data: _DataStamp | UnsetType = UNSET


class _EffectiveStamp(msgspec.Struct, frozen=True, gc=False):
    effective: str
    # the other stamps of records (1.1): directory ``notice_at``, account ``password_changed_at``
    notice_at: str | UnsetType = UNSET
    password_changed_at: str | UnsetType = UNSET


_event_stamps = msgspec.json.Decoder(_EventStamps)
_effective_stamp = msgspec.json.Decoder(_EffectiveStamp)


def _rfc3339(stamp: str) -> bool:
    """Of what msgspec parsed as a datetime: 'T' between date and time, 'Z' or ':' offset."""
    return stamp[10:11] in ("T", "t") and (stamp[-1] in "Zz" or stamp[-3] == ":")


def _event_stamp_path(raw: bytes) -> str | None:
    doc = _event_stamps.decode(raw)
    if not _rfc3339(doc.timestamp):
        return "$.@timestamp"
    data = doc.data
    if data and data.collected_at and not _rfc3339(data.collected_at):
        return "$.data.collected_at"
    return None


def _effective_stamp_path(raw: bytes) -> str | None:
    doc = _effective_stamp.decode(raw)
    if not _rfc3339(doc.effective):
        return "$.effective"
    if doc.notice_at and not _rfc3339(doc.notice_at):
        return "$.notice_at"
    if doc.password_changed_at and not _rfc3339(doc.password_changed_at):
        return "$.password_changed_at"
    return None


def effective_as_written(raw: bytes) -> str:
    """A valid record's ``effective`` exactly as its document wrote it (obligation alerts cite
    ``directory/<user_id>/<effective>``; a datetime would lose the writer's offset and
    precision)."""
    return _effective_stamp.decode(raw).effective


# type -> check of an already decoded document's raw bytes: the JSON path of a stamp that is
# not RFC 3339, or None (``Decoder`` applies it)
RAW_STAMP_CHECKS: dict[type, Callable[[bytes], str | None]] = {
    AccessEvent: _event_stamp_path,
    DirectoryRecord: _effective_stamp_path,
    SubjectRecord: _effective_stamp_path,
    AccountRecord: _effective_stamp_path,
}


# Event time must be a real instant the windows can order: year 1 or 9999 are typos or attacks.
_MIN_TS = datetime(1970, 1, 1, tzinfo=UTC).timestamp()
_MAX_TS = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
# HR systems write "1900-01-01" for "always": a record effective that early is meaningful.
_MIN_EFFECTIVE = datetime(1900, 1, 1, tzinfo=UTC).timestamp()


def epoch(ts: datetime) -> float:
    """Seconds since the epoch of an aware datetime (event time)."""
    return ts.timestamp()


def check_times(
    doc: AccessEvent | DirectoryRecord | SubjectRecord | AccountRecord,
) -> tuple[str, str] | None:
    """Post-decode check: event times in 1970..2100, effective times in 1900..2100."""
    is_event = isinstance(doc, AccessEvent)
    stamp = doc.timestamp if is_event else doc.effective  # type: ignore[union-attr]
    # Shortcut for every ordinary stamp: a UTC offset is under a day, so a local year strictly
    # inside the bounds' years is an instant inside the bounds (timestamp() is the costly part).
    if (1970 if is_event else 1900) < stamp.year < 2099:
        return None
    low = _MIN_TS if is_event else _MIN_EFFECTIVE
    try:
        t = stamp.timestamp()
    except (OverflowError, ValueError):
        t = float("nan")
    if not low <= t < _MAX_TS:
        return "bad_timestamp", (f"timestamp outside {'1970' if is_event else '1900'}"
                                 "-01-01..2100-01-01")
    return None
