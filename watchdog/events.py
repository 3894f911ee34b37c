"""Typed documents of the contract: access events, directory and subject-register records.

msgspec Structs mirror the JSON Schemas in ``watchdog/schemas`` (copies of the contract);
decoding into them *is* the validation (types, enums, lengths, RFC 3339 with offset), at
about 1 us per event. Optional fields default to ``UNSET`` (falsy), not ``None``, so that an
explicit ``null`` is rejected exactly as the schema rejects it. ``gc=False``: these hold no
reference cycles, and keeping the collector away from millions of short-lived objects is
measurable (see bench/).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
NonEmpty256 = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]

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


SubjectType = Literal[
    "erasure_requested", "suspension_requested", "restricted", "consent_withdrawn",
    "marketing_opt_out", "consent_granted", "minor", "cleared",
]


class SubjectRecord(msgspec.Struct, frozen=True, gc=False):
    subject_id: Annotated[str, msgspec.Meta(min_length=1)]
    type: SubjectType
    effective: AwareTime
    purposes: tuple[str, ...] | UnsetType = UNSET


# Event time must be a real instant the windows can order: year 1 or 9999 are typos or attacks.
_MIN_TS = datetime(1970, 1, 1, tzinfo=UTC).timestamp()
_MAX_TS = datetime(2100, 1, 1, tzinfo=UTC).timestamp()


def epoch(ts: datetime) -> float:
    """Seconds since the epoch of an aware datetime (event time)."""
    return ts.timestamp()


def check_times(doc: AccessEvent | DirectoryRecord | SubjectRecord) -> tuple[str, str] | None:
    """Post-decode check: timestamps inside 1970..2100 (``Decoder(check=...)``)."""
    stamp = doc.timestamp if isinstance(doc, AccessEvent) else doc.effective
    try:
        t = stamp.timestamp()
    except (OverflowError, ValueError):
        t = float("nan")
    if not _MIN_TS <= t < _MAX_TS:
        return "bad_timestamp", "timestamp outside 1970-01-01..2100-01-01"
    return None
