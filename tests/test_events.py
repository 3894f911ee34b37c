"""The typed documents: contract examples decode, defaults and UNSET, personal-data access,
subject counts, event time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.builders import event
from watchdog.decode import Decoder, Rejection
from watchdog.events import (
    UNSET,
    AccessEvent,
    AccountRecord,
    Data,
    DirectoryRecord,
    SubjectRecord,
    check_times,
    epoch,
)
from watchdog.schemas import load

DECODERS = {"access-events.jsonl": (Decoder(AccessEvent, check=check_times), "access-event"),
            "directory.jsonl": (Decoder(DirectoryRecord, check=check_times), "directory-record"),
            "subjects.jsonl": (Decoder(SubjectRecord, check=check_times), "subject-record"),
            "accounts.jsonl": (Decoder(AccountRecord, check=check_times), "account-record")}


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_contract_examples_decode_and_validate(contract_dir, name):
    dec, schema = DECODERS[name]
    validator = Draft202012Validator(load(schema), format_checker=FormatChecker())
    lines = (contract_dir / "examples" / name).read_bytes().splitlines()
    assert lines
    for raw in lines:
        assert list(validator.iter_errors(json.loads(raw))) == []
        assert not isinstance(dec.decode(raw), Rejection)


@pytest.mark.parametrize("name", ["policy.yaml", "policy-commitments.yaml"])
def test_contract_policy_example_validates(contract_dir, name):
    import yaml
    doc = yaml.safe_load((contract_dir / "examples" / name).read_text())
    validator = Draft202012Validator(load("policy"), format_checker=FormatChecker())
    assert list(validator.iter_errors(doc)) == []


def test_example_event_fields(contract_dir):
    raw = (contract_dir / "examples" / "access-events.jsonl").read_bytes().splitlines()[2]
    ev = DECODERS["access-events.jsonl"][0].decode(raw)
    assert isinstance(ev, AccessEvent)
    assert ev.timestamp == datetime(2026, 11, 19, 20, 1, tzinfo=UTC)
    assert ev.event.outcome == "success"  # the schema's default
    assert ev.data.subject_count == 1200
    assert ev.data.subjects == 1200
    assert ev.destination.kind == "external_media"


def test_optional_fields_are_unset_and_falsy():
    ev = msgspec.json.decode(b'{"@timestamp":"2026-11-20T00:00:00Z","event":{"id":"a",'
                             b'"action":"login"},"user":{"id":"u"}}', type=AccessEvent)
    assert ev.source is UNSET
    assert not ev.source
    assert ev.destination is UNSET
    assert not ev.destination
    assert ev.event.dataset is UNSET
    assert not ev.event.dataset
    assert ev.event.sequence is UNSET
    assert ev.user.roles is UNSET
    assert ev.data == Data()
    assert ev.data.anonymized is False
    assert ev.data.purpose is UNSET
    assert not ev.data.purpose


def test_structs_are_frozen():
    ev = event()
    with pytest.raises(AttributeError):
        ev.user = None  # type: ignore[misc]


@pytest.mark.parametrize(("kw", "personal"), [
    ({}, True),
    ({"categories": ["identity"], "subject_ids": None}, True),
    ({"categories": None, "subject_ids": ["c-1"]}, True),
    ({"categories": None, "subject_ids": None, "subject_count": 3}, True),
    ({"categories": None, "subject_ids": None, "subject_count": 0}, False),
    ({"categories": [], "subject_ids": [], "purpose": "x"}, False),
    ({"data": False}, False),
])
def test_personal_data_access(kw, personal):
    assert event(**kw).is_personal is personal


@pytest.mark.parametrize(("ids", "count", "subjects"), [
    (["a", "b"], None, 2), (["a", "b"], 10, 10), ([], 7, 7), ([], None, 0), (["a"], 0, 0),
])
def test_subjects_defaults_to_the_ids_given(ids, count, subjects):
    assert event(subject_ids=ids, subject_count=count).data.subjects == subjects


def test_epoch_is_the_instant_whatever_the_offset():
    utc = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    tokyo = utc.astimezone(timezone(timedelta(hours=9)))
    assert epoch(utc) == epoch(tokyo) == utc.timestamp()
    assert epoch(event(when="2026-11-20T09:00:00+09:00").timestamp) == epoch(utc)


@pytest.mark.parametrize(("stamp", "ok"), [
    ("1900-01-01T00:00:00Z", True), ("1899-12-31T23:59:59.999Z", False),
    ("1900-01-01T08:59:59+09:00", False), ("2099-12-31T23:59:59Z", True),
    ("2100-01-01T00:00:00Z", False), ("2100-01-01T08:00:00+09:00", True),
])
def test_check_times_bounds_of_records(stamp, ok):
    # HR writes 1900-01-01 for "always": records may be effective that early
    rec = msgspec.json.decode(json.dumps({"user_id": "u", "status": "active",
                                          "effective": stamp}).encode(), type=DirectoryRecord)
    assert (check_times(rec) is None) is ok
    if not ok:
        assert check_times(rec)[0] == "bad_timestamp"


@pytest.mark.parametrize(("stamp", "ok"), [
    ("1970-01-01T00:00:00Z", True), ("1969-12-31T23:59:59.999Z", False),
    ("1970-01-01T08:59:59+09:00", False), ("2099-12-31T23:59:59Z", True),
    ("2100-01-01T00:00:00Z", False),
])
def test_check_times_bounds_of_events(stamp, ok):
    doc = {"@timestamp": stamp, "event": {"id": "x", "action": "read"}, "user": {"id": "u"}}
    ev = msgspec.json.decode(json.dumps(doc).encode(), type=AccessEvent)
    assert (check_times(ev) is None) is ok


def test_records_keep_their_optional_fields():
    rec = msgspec.json.decode(b'{"subject_id":"c","type":"consent_granted",'
                              b'"effective":"2026-01-01T00:00:00Z","purposes":["a","b"]}',
                              type=SubjectRecord)
    assert rec.purposes == ("a", "b")
    bare = msgspec.json.decode(b'{"subject_id":"c","type":"minor",'
                               b'"effective":"2026-01-01T00:00:00Z"}', type=SubjectRecord)
    assert bare.purposes is UNSET
