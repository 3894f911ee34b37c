"""Fuzzing the single decode/validate path and the policy loader.

Whatever arrives — random bytes, random JSON, valid documents with one field replaced by
anything, raw ``NaN``/``Infinity`` tokens, invalid UTF-8, duplicate keys, nesting deeper than
any parser's stack, subject lists at and over the schema's limit, timestamps in year 1 or
9999, documents over ``max_bytes`` — ``Decoder.decode`` returns a typed document or a
:class:`Rejection`; it never raises. Every rejection carries one of ``decode.REASONS`` and a
one-line detail that never repeats a string value of the document (values may be personal
data, and the detail is logged and written to the dead-letter file).
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz._support import (
    TRICKY,
    directory_strategy,
    event_strategy,
    fuzz,
    json_values,
    policy_docs,
    rfc3339,
    subject_strategy,
)
from watchdog.decode import REASONS, Decoder, Rejection
from watchdog.events import AccessEvent, DirectoryRecord, SubjectRecord, check_times
from watchdog.policy import Policy, PolicyError, parse_policy

TYPES = (AccessEvent, DirectoryRecord, SubjectRecord)
DECODERS = {t: Decoder(t, check=check_times) for t in TYPES}
# what the details are made of (msgspec's messages, the decoder's own)
VOCABULARY = ("Object missing required field Expected `datetime` with a timezone component "
              "Invalid RFC3339 encoded datetime Invalid enum value Expected `object`, got "
              "`array` `str` of length >= 1 <= 256 matching regex `int` >= 0 `null` `bool` "
              "`float` not valid JSON: JSON is malformed: invalid character (byte ) truncated "
              "maximum recursion depth exceeded timestamp outside 1970-01-01..2100-01-01 "
              "document of bytes over the limit of")
_AT_PATH = re.compile(r" - at `[^`]*`$")
LO = 0.0  # 1970-01-01: the earliest event time
LO_EFFECTIVE = -2208988800.0  # 1900-01-01: HR systems write it for "always"
HI = 4102444800.0  # 2100-01-01
VALID = {
    AccessEvent: {"@timestamp": "2026-11-20T09:15:02.123Z",
                  "event": {"id": "ev-1", "action": "export", "dataset": "crm.audit",
                            "sequence": 3},
                  "user": {"id": "e1", "roles": ["agent"]},
                  "source": {"ip": "10.0.0.1"},
                  "data": {"resource": "crm.customers", "categories": ["identity"],
                           "subject_ids": ["c-1"], "purpose": "customer_support",
                           "collected_at": "2020-01-01T00:00:00+09:00"},
                  "destination": {"kind": "email", "domain": "example.com", "country": "JP"}},
    DirectoryRecord: {"user_id": "e1", "status": "active",
                      "effective": "2026-11-01T00:00:00Z", "roles": ["agent"]},
    SubjectRecord: {"subject_id": "c-1", "type": "consent_granted",
                    "effective": "2026-11-01T00:00:00Z", "purposes": ["marketing"]},
}


def judge(decoder: Decoder[Any], raw: bytes, secrets: tuple[str, ...] = ()) -> Any:
    """Decode ``raw`` and check the outcome is a document or a well-formed rejection."""
    result = decoder.decode(raw)  # must not raise
    if isinstance(result, Rejection):
        assert result.reason in REASONS, result
        assert result.raw is raw
        detail = result.detail
        assert isinstance(detail, str)
        assert detail
        assert detail == " ".join(detail.splitlines()), f"detail is not one line: {detail!r}"
        # the JSON path names fields, never values (a value may well spell a path: "$.@time")
        message = _AT_PATH.sub("", detail)
        for s in secrets:
            assert s not in message, f"the detail repeats a value of the document: {detail!r}"
    else:
        assert isinstance(result, TYPES)
        if isinstance(result, AccessEvent):
            assert LO <= result.timestamp.timestamp() < HI
        else:
            assert LO_EFFECTIVE <= result.effective.timestamp() < HI
    return result


def _strings(value: Any) -> tuple[str, ...]:
    """String values (not keys) of a JSON value that could be read as personal data."""
    out: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    # short strings and the words of the messages themselves occur in any detail
    return tuple(s for s in out if len(s) >= 8 and s.strip() and not s.isdigit()
                 and s not in TRICKY and s not in VOCABULARY)


# -- 1. arbitrary bytes
@fuzz("decode_bytes", 300)
@given(raw=st.binary(max_size=512), kind=st.sampled_from(TYPES))
@example(raw=b"", kind=AccessEvent)
@example(raw=b"\xff\xfe\x00", kind=AccessEvent)
@example(raw=b'{"@timestamp": NaN}', kind=AccessEvent)
@example(raw=b"[" * 5000, kind=SubjectRecord)
def test_arbitrary_bytes_never_raise(raw: bytes, kind: type) -> None:
    judge(DECODERS[kind], raw)


# -- 2. arbitrary JSON values
def _dumps(value: Any) -> bytes:
    # json, not orjson: integers beyond 64 bits and non-ASCII stay as they are
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@fuzz("decode_json", 150)
@given(value=json_values(), kind=st.sampled_from(TYPES))
def test_arbitrary_json_never_raises(value: Any, kind: type) -> None:
    judge(DECODERS[kind], _dumps(value), _strings(value))


@st.composite
def mutated(draw: st.DrawFn, kind: type) -> tuple[bytes, tuple[str, ...]]:
    """A valid document with one to three members replaced, added or removed."""
    doc = copy.deepcopy(VALID[kind])
    secrets: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        parent = doc
        while True:  # walk down to some object
            keys = [k for k, v in parent.items() if isinstance(v, dict)]
            if not keys or draw(st.booleans()):
                break
            parent = parent[draw(st.sampled_from(keys))]
        names = st.sampled_from(sorted(parent)) if parent else st.nothing()
        key = draw(st.one_of(names, st.text(max_size=12)))
        if draw(st.integers(0, 4)) == 0:
            parent.pop(key, None)
        else:
            value = draw(json_values(12))
            parent[key] = value
            secrets.extend(_strings(value))
    return _dumps(doc), tuple(secrets)


@fuzz("decode_mutated", 150)
@given(data=st.data(), kind=st.sampled_from(TYPES))
def test_mutated_documents_never_raise(data: st.DataObject, kind: type) -> None:
    raw, secrets = data.draw(mutated(kind))
    judge(DECODERS[kind], raw, secrets)


@pytest.mark.parametrize("kind", TYPES)
def test_valid_samples_decode(kind: type) -> None:
    assert isinstance(judge(DECODERS[kind], orjson.dumps(VALID[kind])), kind)


# -- raw-token mutations: NaN/Infinity, invalid UTF-8, duplicate keys, cut documents
TOKENS = (b"NaN", b"Infinity", b"-Infinity", b"nan", b"1e999", b"-0", b"1E400", b"\xff",
          b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b'"\\ud800"',
          b'"\\u0000"', b"[]", b"{}", b"null", b"true", b'""', b"99999999999999999999999",
          b"-1", b"0.5", b"\"2026-11-20T09:15:02Z\"", b'"\xff"')


@fuzz("decode_tokens", 300)
@given(kind=st.sampled_from(TYPES), data=st.data())
def test_raw_token_mutations_never_raise(kind: type, data: st.DataObject) -> None:
    raw = orjson.dumps(VALID[kind])
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(("replace_value", "insert", "cut", "duplicate_key")))
        if op == "replace_value":  # a value token (after a colon) becomes a raw token
            colons = [i for i, b in enumerate(raw) if b == ord(":")]
            if not colons:
                continue
            i = data.draw(st.sampled_from(colons)) + 1
            end = i
            while end < len(raw) and raw[end] not in b",}]":
                end += 1
            raw = raw[:i] + data.draw(st.sampled_from(TOKENS)) + raw[end:]
        elif op == "insert":
            i = data.draw(st.integers(0, len(raw)))
            raw = raw[:i] + data.draw(st.sampled_from(TOKENS)) + raw[i:]
        elif op == "cut":
            i = data.draw(st.integers(0, len(raw)))
            raw = raw[:i]
        elif raw.startswith(b"{") and raw.endswith(b"}") and b":" in raw:
            # the first member again at the end, with another value: last one wins, or rejected
            first = raw[1:raw.index(b":") + 1]
            raw = raw[:-1] + b"," + first + data.draw(st.sampled_from(TOKENS)) + b"}"
    judge(DECODERS[kind], raw)


def test_duplicate_keys_do_not_raise() -> None:
    raw = (b'{"@timestamp":"2026-11-20T09:15:02Z","event":{"id":"a","action":"read"},'
           b'"user":{"id":"u"},"event":{"id":"b","action":"bogus"},"user":{"id":"v"}}')
    judge(DECODERS[AccessEvent], raw)


# -- deep nesting
@fuzz("decode_deep", 25, slow=True)
@given(depth=st.one_of(st.integers(1, 200), st.integers(1_000, 300_000)),
       opener=st.sampled_from((b"[", b'{"a":')),
       where=st.sampled_from(("top", "unknown_member", "subject_ids", "data")))
@example(depth=200_000, opener=b"[", where="unknown_member")
@example(depth=200_000, opener=b'{"a":', where="data")
def test_deep_nesting_never_raises(depth: int, opener: bytes, where: str) -> None:
    closer = b"]" if opener == b"[" else b"}"
    nest = opener * depth + b"1" + closer * depth
    ev = orjson.dumps(VALID[AccessEvent])
    if where == "top":
        raw = nest
    elif where == "unknown_member":
        raw = ev[:-1] + b',"x":' + nest + b"}"
    elif where == "subject_ids":
        raw = ev.replace(b'"subject_ids":["c-1"]', b'"subject_ids":[' + nest + b"]")
    else:
        raw = ev.replace(b'"data":{', b'"data":{"extra":' + nest + b",")
    big = Decoder(AccessEvent, max_bytes=len(raw) + 1, check=check_times)
    judge(big, raw)


# -- huge subject lists
@fuzz("decode_huge", 8, slow=True)
@given(n=st.one_of(st.sampled_from((0, 99_999, 100_000, 100_001, 150_000)),
                   st.integers(0, 120_000)))
def test_huge_subject_lists(n: int) -> None:
    doc = copy.deepcopy(VALID[AccessEvent])
    doc["data"]["subject_ids"] = [f"c{i}" for i in range(n)]
    raw = orjson.dumps(doc)
    result = judge(Decoder(AccessEvent, max_bytes=4 << 20, check=check_times), raw)
    if n <= 100_000:
        assert isinstance(result, AccessEvent)
        assert len(result.data.subject_ids) == n
    else:
        assert isinstance(result, Rejection)
        assert result.reason == "invalid_value"
    # and the default limit of 1 MiB rejects the larger ones as too large, never raises
    judge(DECODERS[AccessEvent], raw)


# -- timestamps far in the past or future
@st.composite
def any_time(draw: st.DrawFn) -> str:
    year = draw(st.one_of(st.integers(1, 9999), st.sampled_from((1, 1969, 1970, 2099, 2100,
                                                                 9999))))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 28))
    h, m, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    frac = draw(st.sampled_from(("", ".1", ".123", ".123456", ".123456789")))
    off = draw(st.sampled_from(("Z", "z", "+00:00", "-00:00", "+14:00", "-12:00", "+23:59",
                                "-23:59", "+05:30", "", "+24:00", "+0900")))
    sep = draw(st.sampled_from(("T", "t", " ")))
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{h:02d}:{m:02d}:{s:02d}{frac}{off}"


@fuzz("decode_times", 300)
@given(stamp=st.one_of(any_time(), rfc3339(-1e10, 1e11), st.text(max_size=40)),
       kind=st.sampled_from(TYPES), field=st.sampled_from(("time", "collected_at")))
@example(stamp="0001-01-01T00:00:00+01:00", kind=AccessEvent, field="time")
@example(stamp="9999-12-31T23:59:59-23:59", kind=DirectoryRecord, field="time")
@example(stamp="2099-12-31T23:59:59.999999Z", kind=SubjectRecord, field="time")
@example(stamp="2100-01-01T00:00:00Z", kind=AccessEvent, field="time")
@example(stamp="1969-12-31T23:59:59Z", kind=AccessEvent, field="time")
def test_timestamps_anywhere(stamp: str, kind: type, field: str) -> None:
    doc = copy.deepcopy(VALID[kind])
    if kind is AccessEvent and field == "collected_at":
        doc["data"]["collected_at"] = stamp
    elif kind is AccessEvent:
        doc["@timestamp"] = stamp
    else:
        doc["effective"] = stamp
    result = judge(DECODERS[kind], orjson.dumps(doc), (stamp,) if len(stamp) >= 8 else ())
    if isinstance(result, Rejection):
        assert result.reason in ("bad_timestamp", "invalid_value"), result
    elif kind is AccessEvent and field == "collected_at":
        collected = result.data.collected_at
        # collected_at is not range-checked: the retention rule must cope with any year
        assert collected.tzinfo is not None


# -- documents over a small max_bytes
@fuzz("decode_oversized", 200)
@given(value=st.one_of(event_strategy(), directory_strategy(), subject_strategy(), json_values()),
       max_bytes=st.integers(0, 600), kind=st.sampled_from(TYPES))
def test_oversized_documents_are_rejected_as_too_large(value: Any, max_bytes: int,
                                                       kind: type) -> None:
    raw = _dumps(value)
    result = judge(Decoder(kind, max_bytes=max_bytes, check=check_times), raw, _strings(value))
    if len(raw) > max_bytes:
        assert isinstance(result, Rejection)
        assert result.reason == "too_large"
    else:
        assert not (isinstance(result, Rejection) and result.reason == "too_large")


# -- schema-valid documents are accepted
@fuzz("decode_valid", 200)
@given(doc=event_strategy())
def test_schema_valid_events_decode(doc: dict[str, Any]) -> None:
    result = judge(DECODERS[AccessEvent], _dumps(doc))
    assert isinstance(result, AccessEvent), result
    assert result.event.id == doc["event"]["id"]


# -- validation: the policy loader
@fuzz("policy_docs", 100)
@given(doc=st.one_of(policy_docs(), json_values(20), st.builds(
    lambda base, key, value: {**base, key: value}, policy_docs(),
    st.sampled_from(("roles", "business_hours", "thresholds", "processors", "internal_networks",
                     "retention_days", "severities", "clauses", "bogus", "organization")),
    json_values(10))))
@example(doc={"organization": "x", "roles": {}, "business_hours": {"timezone": "America"}})
@example(doc={"organization": "x", "roles": {}, "business_hours": {"start": "29:99"}})
@example(doc={"organization": "x", "roles": {}, "internal_networks": ["10.0.0.0/33"]})
def test_policy_documents_give_a_policy_or_a_policy_error(doc: Any) -> None:
    try:
        policy = parse_policy(doc, "fuzz.yaml")
    except PolicyError as err:
        msg = str(err)
        assert msg.startswith("fuzz.yaml: ")
        assert "\n" not in msg
        return
    assert isinstance(policy, Policy)
    th = policy.thresholds
    for value in (th.bulk_export_subjects, th.failed_logins, th.restriction_grace_hours):
        assert not (isinstance(value, float) and math.isnan(value))


@fuzz("policy_generated", 50)
@given(doc=policy_docs())
def test_generated_policies_are_valid(doc: dict[str, Any]) -> None:
    assert isinstance(parse_policy(doc, "gen"), Policy)


def test_struct_round_trip_of_a_decoded_event() -> None:
    ev = judge(DECODERS[AccessEvent], orjson.dumps(VALID[AccessEvent]))
    assert isinstance(ev, AccessEvent)
    again = judge(DECODERS[AccessEvent], msgspec.json.encode(ev))
    assert again == ev


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59",
                                   "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z"])
def test_the_far_past_and_future_are_bad_timestamps(stamp: str) -> None:
    doc = {**VALID[AccessEvent], "@timestamp": stamp}
    result = DECODERS[AccessEvent].decode(orjson.dumps(doc))
    assert isinstance(result, Rejection)
    assert result.reason == "bad_timestamp"
