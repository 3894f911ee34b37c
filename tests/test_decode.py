"""Decoder: what it accepts is valid against the contract's schemas; it never raises; every
rejection has a low-cardinality reason and a one-line detail without personal data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from watchdog.decode import DEFAULT_MAX_BYTES, REASONS, Decoder, Rejection
from watchdog.events import (
    AccessEvent,
    AccountRecord,
    DirectoryRecord,
    SubjectRecord,
    check_times,
)

SCHEMAS = Path(__file__).resolve().parent.parent / "watchdog" / "schemas"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_bytes())
    return Draft202012Validator(schema, format_checker=FormatChecker())


EVENT_SCHEMA = validator("access-event")
DIR_SCHEMA = validator("directory-record")
SUBJ_SCHEMA = validator("subject-record")
ACC_SCHEMA = validator("account-record")
EVENTS = Decoder(AccessEvent, check=check_times)
DIRS = Decoder(DirectoryRecord, check=check_times)
SUBJS = Decoder(SubjectRecord, check=check_times)
ACCS = Decoder(AccountRecord, check=check_times)

ACTIONS = ["login", "logout", "read", "search", "create", "update", "delete", "export",
           "download", "copy", "print", "transfer", "email", "share", "privilege_change"]
CATEGORIES = ["identity", "contact", "address", "payment", "my_number", "location", "purchase",
              "behavior", "device", "health", "preferences", "employment", "minor",
              "credentials"]
KINDS = ["internal", "external_media", "email", "third_party", "cloud_storage", "print",
         "authority"]
SUBJECT_TYPES = ["erasure_requested", "suspension_requested", "restricted",
                 "consent_withdrawn", "marketing_opt_out", "consent_granted", "minor", "cleared"]

# -- strategies --------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30))
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    """A valid RFC 3339 timestamp with an offset, in one of its many spellings."""
    naive = draw(instants)
    minutes = draw(offsets)
    local = naive.replace(tzinfo=UTC).astimezone(timezone(timedelta(minutes=minutes)))
    frac = draw(st.sampled_from(["", ".0", ".123", ".123456", ".123456789"]))
    sep = draw(st.sampled_from("Tt"))
    if minutes == 0 and draw(st.booleans()):
        off = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"]))
    else:
        sign = "+" if minutes >= 0 else "-"
        off = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + off


@st.composite
def near_rfc3339(draw: st.DrawFn) -> str:
    """Timestamps that RFC 3339 may or may not allow: the spellings parsers disagree on."""
    naive = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
                 | st.datetimes(min_value=datetime(1969, 12, 1), max_value=datetime(2100, 1, 30)))
    sep = draw(st.sampled_from(["T", "t", " ", "_", ""]))
    time = naive.strftime(draw(st.sampled_from(["%H:%M:%S", "%H:%M", "%H%M%S"])))
    frac = draw(st.sampled_from(["", ".", ".5", ",5", ".1234567890123"]))
    off = draw(st.sampled_from(["Z", "z", "", "+09:00", "+0900", "+09", "-23:59", "+24:00",
                                "+09:60", " Z", "UTC"]))
    date = f"{naive.year:04d}-{naive.month:02d}-{naive.day:02d}"
    return date + sep + time + frac + off


text = st.text(max_size=20)
nonempty = st.text(min_size=1, max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=10,
)
u63 = st.integers(min_value=0, max_value=2**63 - 1)


def obj(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(required, optional=optional)


valid_events = obj(
    {
        "@timestamp": rfc3339(),
        "event": obj({"id": st.text(min_size=1, max_size=256), "action": st.sampled_from(ACTIONS)},
                     {"outcome": st.sampled_from(["success", "failure", "unknown"]),
                      "dataset": st.text(max_size=256), "sequence": u63}),
        "user": obj({"id": st.text(min_size=1, max_size=256)},
                    {"name": text, "roles": st.lists(text, max_size=3)}),
    },
    {
        "source": obj({}, {"ip": text}),
        "host": obj({}, {"name": text}),
        "data": obj({}, {
            "resource": st.text(max_size=64),
            "categories": st.lists(st.sampled_from(CATEGORIES), max_size=4),
            "subject_ids": st.lists(text, max_size=5),
            "subject_count": u63, "records": u63, "bytes": u63,
            "purpose": text, "anonymized": st.booleans(), "collected_at": rfc3339(),
            "legal_basis": st.text(min_size=1, max_size=64),
        }),
        "destination": obj({}, {
            "kind": st.sampled_from(KINDS), "domain": text, "organization": text,
            "country": st.from_regex(r"\A[A-Z]{2}\Z"),
        }),
        "labels": json_values,  # properties the contract does not define are allowed
    },
)

valid_directory = obj(
    {"user_id": nonempty,
     "status": st.sampled_from(["active", "departed", "transferred", "suspended"]),
     "effective": rfc3339()},
    {"roles": st.lists(text, max_size=3), "department": text, "manager": text,
     "notice_at": rfc3339()},
)
valid_subjects = obj(
    {"subject_id": nonempty, "type": st.sampled_from(SUBJECT_TYPES), "effective": rfc3339()},
    {"purposes": st.lists(text, min_size=1, max_size=3),
     "categories": st.lists(text, min_size=1, max_size=3),
     "resources": st.lists(text, min_size=1, max_size=3)},
)
valid_accounts = obj(
    {"user_id": nonempty, "enabled": st.booleans(), "effective": rfc3339()},
    {"roles": st.lists(text, max_size=3), "password_changed_at": rfc3339()},
)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict]) -> dict:
    """A valid document with one to three values replaced, removed or respelt."""
    doc = draw(base)
    for _ in range(draw(st.integers(1, 3))):
        targets = [p for p in paths(doc) if p]
        if not targets:
            break
        path = draw(st.sampled_from(targets))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        how = draw(st.sampled_from(["replace", "delete", "stamp", "number", "string"]))
        if how == "delete":
            del parent[path[-1]]
        elif how == "stamp":
            parent[path[-1]] = draw(near_rfc3339())
        elif how == "number":
            parent[path[-1]] = draw(st.integers(min_value=-(2**65), max_value=2**65)
                                    | st.floats(allow_nan=False, allow_infinity=False))
        elif how == "string":
            parent[path[-1]] = draw(st.text(max_size=300))
        else:
            parent[path[-1]] = draw(json_values)
    return doc


def encode(doc: Any, ascii_only: bool) -> bytes:
    return json.dumps(doc, ensure_ascii=ascii_only).encode()


FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- (a) accepted => valid against the schema; valid => accepted ---------------------------------


@FAST
@given(valid_events, st.booleans())
def test_valid_events_are_accepted(doc, ascii_only):
    assert list(EVENT_SCHEMA.iter_errors(doc)) == []
    ev = EVENTS.decode(encode(doc, ascii_only))
    assert isinstance(ev, AccessEvent), ev
    assert ev.event.id == doc["event"]["id"]


@FAST
@given(mutated(valid_events), st.booleans())
def test_whatever_is_accepted_is_valid_against_the_schema(doc, ascii_only):
    ev = EVENTS.decode(encode(doc, ascii_only))
    if isinstance(ev, AccessEvent):
        assert [e.message for e in EVENT_SCHEMA.iter_errors(doc)] == []
    else:
        assert ev.reason in REASONS


@FAST
@given(valid_directory, valid_subjects)
def test_valid_records_are_accepted(drec, srec):
    assert list(DIR_SCHEMA.iter_errors(drec)) == []
    assert list(SUBJ_SCHEMA.iter_errors(srec)) == []
    assert isinstance(DIRS.decode(encode(drec, True)), DirectoryRecord)
    assert isinstance(SUBJS.decode(encode(srec, False)), SubjectRecord)


@FAST
@given(mutated(valid_directory), mutated(valid_subjects))
def test_accepted_records_are_valid_against_the_schema(drec, srec):
    if isinstance(DIRS.decode(encode(drec, True)), DirectoryRecord):
        assert [e.message for e in DIR_SCHEMA.iter_errors(drec)] == []
    if isinstance(SUBJS.decode(encode(srec, True)), SubjectRecord):
        assert [e.message for e in SUBJ_SCHEMA.iter_errors(srec)] == []


@FAST
@given(valid_accounts, st.booleans())
def test_valid_account_records_are_accepted(arec, ascii_only):
    assert list(ACC_SCHEMA.iter_errors(arec)) == []
    assert isinstance(ACCS.decode(encode(arec, ascii_only)), AccountRecord)


@FAST
@given(mutated(valid_accounts))
def test_accepted_account_records_are_valid_against_the_schema(arec):
    out = ACCS.decode(encode(arec, True))
    if isinstance(out, AccountRecord):
        assert [e.message for e in ACC_SCHEMA.iter_errors(arec)] == []
    else:
        assert out.reason in REASONS


@FAST
@given(valid_accounts, near_rfc3339(), st.sampled_from(["effective", "password_changed_at"]))
def test_account_stamp_spellings_agree_with_the_schema(rec, stamp, field):
    rec[field] = stamp
    if isinstance(ACCS.decode(encode(rec, True)), AccountRecord):
        assert not list(ACC_SCHEMA.iter_errors(rec)), stamp


def in_range(stamp: str) -> bool:
    t = datetime.fromisoformat(stamp.upper().replace("Z", "+00:00")).timestamp()
    return datetime(1970, 1, 1, tzinfo=UTC).timestamp() <= t < datetime(
        2100, 1, 1, tzinfo=UTC).timestamp()


@FAST
@given(valid_events, near_rfc3339(), st.sampled_from(["@timestamp", "collected_at"]))
def test_timestamp_spellings_agree_with_the_schema(doc, stamp, field):
    """Accepted iff the schema's date-time format accepts it (and it is in 1970..2100)."""
    if field == "@timestamp":
        doc["@timestamp"] = stamp
    else:
        doc.setdefault("data", {})["collected_at"] = stamp
    valid = not list(EVENT_SCHEMA.iter_errors(doc))
    accepted = isinstance(EVENTS.decode(encode(doc, True)), AccessEvent)
    if accepted:
        assert valid, stamp
    elif valid:
        assert field == "@timestamp", stamp
        assert not in_range(stamp), stamp


@FAST
@given(valid_directory, near_rfc3339())
def test_effective_spellings_agree_with_the_schema(rec, stamp):
    rec["effective"] = stamp
    if isinstance(DIRS.decode(encode(rec, True)), DirectoryRecord):
        assert not list(DIR_SCHEMA.iter_errors(rec)), stamp


# -- (b) arbitrary bytes never raise -------------------------------------------------------------


def check_rejection(out: Any) -> None:
    if isinstance(out, Rejection):
        assert out.reason in REASONS
        assert out.detail
        assert "\n" not in out.detail


@FAST
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw):
    for dec in (EVENTS, DIRS, SUBJS):
        out = dec.decode(raw)
        check_rejection(out)
        if isinstance(out, Rejection):
            assert out.raw == raw


@FAST
@given(valid_events, st.data())
def test_corrupted_documents_never_raise(doc, data):
    raw = bytearray(encode(doc, False))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    check_rejection(EVENTS.decode(bytes(raw)))


# -- explicit cases ------------------------------------------------------------------------------

GOOD = {"@timestamp": "2026-11-20T09:15:02.123Z",
        "event": {"id": "e-1", "action": "read", "dataset": "crm.audit"},
        "user": {"id": "u1"},
        "data": {"categories": ["identity"], "subject_ids": ["c-1"], "purpose": "support"}}


def with_(**changes: Any) -> bytes:
    doc = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        *parents, last = dotted.replace("__", ".").split(".")
        node = doc
        for p in parents:
            node = node.setdefault(p, {})
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return json.dumps(doc).encode()


def rejected(raw: bytes, reason: str, dec: Decoder = EVENTS) -> str:
    out = dec.decode(raw)
    assert isinstance(out, Rejection), out
    assert out.reason == reason, out
    assert out.raw == raw
    assert "\n" not in out.detail
    return out.detail


def test_good_document_is_accepted():
    ev = EVENTS.decode(json.dumps(GOOD).encode())
    assert isinstance(ev, AccessEvent)
    assert ev.timestamp == datetime(2026, 11, 20, 9, 15, 2, 123000, tzinfo=UTC)


@pytest.mark.parametrize("raw", [b"", b"   ", b"{", b'{"@timestamp": }',
                                 json.dumps(GOOD).encode() + b" trailing",
                                 b"\xef\xbb\xbf" + json.dumps(GOOD).encode()])
def test_malformed_json(raw):
    assert "not valid JSON" in rejected(raw, "not_json")


@pytest.mark.parametrize(("raw", "where"), [
    (with_(event__sequence=float("nan")), "NaN"),
    (with_(event__sequence=float("inf")), "Infinity"),
    (with_(event__sequence=float("-inf")), "-Infinity"),
])
def test_nan_and_infinity_are_not_json(raw, where):
    assert where.encode() in raw
    rejected(raw, "not_json")


@pytest.mark.parametrize(("raw", "path"), [
    (with_(user__id=5), "$.user.id"),
    (with_(event__sequence="7"), "$.event.sequence"),
    (with_(event__sequence=1.5), "$.event.sequence"),
    (with_(event__sequence=-1), "$.event.sequence"),
    (with_(data__categories="identity"), "$.data.categories"),
    (with_(data__anonymized="yes"), "$.data.anonymized"),
    (with_(data=None), "$.data"),
    (with_(destination__country="jp"), "$.destination.country"),
    (with_(event__id=""), "$.event.id"),
    (with_(event__id="x" * 257), "$.event.id"),
    (b"[]", "object"),
    (b"null", "object"),
])
def test_wrong_types_and_values(raw, path):
    assert path in rejected(raw, "invalid_value")


def test_enum_values_are_not_echoed():
    detail = rejected(with_(data__categories=["SECRET-VALUE"]), "invalid_value")
    assert "SECRET-VALUE" not in detail
    assert "$.data.categories[0]" in detail
    detail = rejected(with_(event__action="exfiltrate-c-000311"), "invalid_value")
    assert "c-000311" not in detail


@pytest.mark.parametrize(("raw", "field"), [
    (with_(**{"@timestamp": ...}), "@timestamp"),
    (with_(user=...), "user"),
    (with_(event__id=...), "id"),
    (with_(event__action=...), "action"),
])
def test_missing_required_field(raw, field):
    assert f"`{field}`" in rejected(raw, "missing_field")


@pytest.mark.parametrize("stamp", [
    "yesterday", "2026-11-20", "2026-11-20T09:15:02", "2026-11-20T09:15Z",
    "2026-02-30T00:00:00Z", "2026-11-20T24:00:00Z", "2026-11-20T09:15:02+09",
    "2026-11-20 09:15:02Z", "2026-11-20T09:15:02+0900", "2026-11-20T09:15:02.Z", "",
])
def test_unparseable_timestamp(stamp):
    assert "$.@timestamp" in rejected(with_(**{"@timestamp": stamp}), "bad_timestamp")


def test_unparseable_collected_at():
    raw = with_(data__collected_at="2025-01-01 00:00:00+09:00")
    assert "$.data.collected_at" in rejected(raw, "bad_timestamp")


def test_timestamp_of_the_wrong_type():
    rejected(with_(**{"@timestamp": 1763630102}), "bad_timestamp")


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+09:00",
                                   "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-09:00",
                                   "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z"])
def test_timestamps_outside_1970_to_2100(stamp):
    assert "1970" in rejected(with_(**{"@timestamp": stamp}), "bad_timestamp")


@pytest.mark.parametrize("stamp", ["1970-01-01T00:00:00Z", "2099-12-31T23:59:59.999Z",
                                   "2026-11-20t09:15:02z", "2026-11-20T09:15:02-00:00"])
def test_timestamps_at_the_edges_are_accepted(stamp):
    assert isinstance(EVENTS.decode(with_(**{"@timestamp": stamp})), AccessEvent)


def test_too_large():
    raw = with_(data__subject_ids=["c-" + "0" * 98] * 100_000)  # ~10 MB
    assert len(raw) > 10_000_000
    detail = rejected(raw, "too_large")
    assert str(DEFAULT_MAX_BYTES) in detail


def test_the_limit_is_configurable():
    raw = json.dumps(GOOD).encode()
    assert isinstance(Decoder(AccessEvent, max_bytes=len(raw)).decode(raw), AccessEvent)
    rejected(raw, "too_large", Decoder(AccessEvent, max_bytes=len(raw) - 1))


@pytest.mark.parametrize("raw", [
    json.dumps(GOOD).encode().replace(b'"u1"', b'"u\xff1"'),
    json.dumps(GOOD).encode().replace(b'"c-1"', b'"c-\xc3\x281"'),
    b'\xff\xfe{}',
])
def test_invalid_utf8(raw):
    out = EVENTS.decode(raw)
    assert isinstance(out, Rejection)
    assert out.reason == "not_json"
    assert "UTF-8" in out.detail or "JSON" in out.detail


@pytest.mark.parametrize("raw", [
    b'{"extra":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"event":' * 50_000 + b"1" + b"}" * 50_000,
    b"[" * 1_000_000,
])
def test_deep_nesting(raw):
    out = EVENTS.decode(raw)
    assert isinstance(out, Rejection)
    assert out.reason in ("not_json", "invalid_value")


def test_unknown_properties_are_ignored():
    ev = EVENTS.decode(with_(extra={"nested": [1, 2, {"x": None}]}, event__ingested="now"))
    assert isinstance(ev, AccessEvent)


def test_directory_and_subject_records():
    good = b'{"user_id":"e1","status":"departed","effective":"2026-11-15T18:00:00+09:00"}'
    assert isinstance(DIRS.decode(good), DirectoryRecord)
    rejected(good.replace(b"departed", b"retired"), "invalid_value", DIRS)
    rejected(good.replace(b"T18", b" 18"), "bad_timestamp", DIRS)
    rejected(b'{"user_id":"e1","status":"active"}', "missing_field", DIRS)
    subj = b'{"subject_id":"c-1","type":"minor","effective":"0001-01-01T00:00:00Z"}'
    rejected(subj, "bad_timestamp", SUBJS)


def test_rejections_keep_the_raw_bytes_untouched():
    raw = b'{"not": "an event", "subject": "c-000311"}'
    out = EVENTS.decode(raw)
    assert isinstance(out, Rejection)
    assert out.raw is raw
    assert "c-000311" not in out.detail


def test_decode_into_msgspec_and_back_round_trips():
    ev = EVENTS.decode(json.dumps(GOOD).encode())
    again = EVENTS.decode(msgspec.json.encode(ev))
    assert again == ev
