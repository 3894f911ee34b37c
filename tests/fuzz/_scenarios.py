"""Generated organisations run through the engine: the scenario strategy and its checks."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import jsonschema
import msgspec
import orjson
from hypothesis import event
from hypothesis import strategies as st

from tests.fuzz._support import (
    SUBJECTS,
    directory_strategy,
    event_strategy,
    policy_docs,
    subject_strategy,
)
from watchdog import schemas
from watchdog.alerts.model import Alert, encode_alert, safe_text
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.decode import Decoder, Rejection
from watchdog.engine.detector import Detector
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import Reorderer
from watchdog.events import AccessEvent, DirectoryRecord, SubjectRecord, check_times, epoch
from watchdog.policy import parse_policy
from watchdog.rules import RULE_IDS, default_rules

KEY = b"fuzz-key-0123456789abcdef"
PSEUDONYM = re.compile(r"s-[0-9a-f]{16}")
ALERT_ID = re.compile(r"[a-z_]+:[0-9a-f]{16}")
RAW_BULK_ID = re.compile(r"bulk-[0-9]")
ALERT_SCHEMA = jsonschema.Draft202012Validator(schemas.load("alert"),
                                               format_checker=jsonschema.FormatChecker())
EVENTS = Decoder(AccessEvent, check=check_times)
DIRECTORY = Decoder(DirectoryRecord, check=check_times)
SUBJECT_RECORDS = Decoder(SubjectRecord, check=check_times)
FIRED: Counter[str] = Counter()  # rules seen firing over the session
SPANS = (600.0, 3600.0, 6 * 3600.0)
EVENTS_OVER = {span: event_strategy(span) for span in SPANS}
DIRECTORY_OVER = {span: directory_strategy(span) for span in SPANS}
SUBJECTS_OVER = {span: subject_strategy(span) for span in SPANS}


def decode(decoder: Decoder[Any], doc: dict[str, Any]) -> Any:
    result = decoder.decode(msgspec.json.encode(doc))
    assert not isinstance(result, Rejection), (result, doc)
    return result


@st.composite
def scenarios(draw: st.DrawFn, max_events: int = 40,
              spans: tuple[float, ...] = SPANS) -> dict[str, Any]:
    """A policy, directory, subject register and events, with a plan of what happens when."""
    n = draw(st.integers(1, max_events))
    # a burst of ten minutes (brute force, re-identification) up to hours (silences, windows)
    span = draw(st.sampled_from(spans))
    events = draw(st.lists(EVENTS_OVER[span], min_size=1, max_size=n))
    return {
        "policy": draw(policy_docs()),
        "policy2": draw(st.none() | policy_docs()),
        "directory": draw(st.lists(DIRECTORY_OVER[span], max_size=10)),
        "subjects": draw(st.lists(SUBJECTS_OVER[span], max_size=12)),
        "events": events,
        # per event: its partition, and what happens before it is pushed
        "plan": draw(st.lists(st.tuples(st.integers(0, 2),
                                        st.sampled_from(("", "", "", "", "idle", "evict",
                                                         "swap", "directory", "subject"))),
                              min_size=len(events), max_size=len(events))),
        "lateness": draw(st.sampled_from((0.0, 60.0, 300.0, 3600.0))),
        "late_records": draw(st.lists(st.one_of(
            DIRECTORY_OVER[span].map(lambda d: ("directory", d)),
            SUBJECTS_OVER[span].map(lambda s: ("subject", s))), max_size=4)),
    }


def unique_ids(sc: dict[str, Any]) -> dict[str, Any]:
    """``sc`` with only the first event of each id, on its planned partition, no interruptions
    (for the tests that redeliver or spread events themselves)."""
    seen: set[str] = set()
    keep = []
    for doc, (partition, _) in zip(sc["events"], sc["plan"], strict=True):
        if doc["event"]["id"] not in seen:
            seen.add(doc["event"]["id"])
            keep.append((doc, (partition, "")))
    return {**sc, "events": [d for d, _ in keep], "plan": [p for _, p in keep]}


OBLIGATIONS = {"account_not_revoked": "directory/", "erasure_overdue": "subjects/"}


def check_alert(a: Alert, pushed_ids: set[str], accounts: set[str], datasets: set[str]) -> None:
    """The alert validates against alert.schema.json and keeps the contract's promises."""
    doc = orjson.loads(encode_alert(msgspec.structs.replace(
        a, detected_at="2026-11-20T09:15:02.123Z")))
    ALERT_SCHEMA.validate(doc)
    assert a.rule in RULE_IDS
    assert ALERT_ID.fullmatch(a.alert_id), a.alert_id
    assert a.alert_id.startswith(a.rule + ":")
    assert a.event_ids, a
    if a.rule in OBLIGATIONS:  # judged at a deadline: one reference to the starting record
        assert len(a.event_ids) == 1, a
        assert a.event_ids[0].startswith(OBLIGATIONS[a.rule]), a
    else:
        # (ids and names as alerts carry them: control characters escaped)
        assert set(a.event_ids) <= {safe_text(i) for i in pushed_ids}, a
        assert a.user_id in {safe_text(u) for u in accounts} or (
            a.rule == "log_gap" and a.user_id in {safe_text(d) for d in datasets}), a
    pseudonyms = a.subjects.pseudonyms
    assert all(PSEUDONYM.fullmatch(p) for p in pseudonyms), pseudonyms
    assert list(pseudonyms) == sorted(set(pseudonyms))
    assert a.subjects.count >= len(pseudonyms)
    assert len(pseudonyms) <= 50
    text = orjson.dumps(doc).decode()
    for sid in SUBJECTS:
        assert sid not in text, f"raw subject id {sid} in an alert: {text}"
    assert not RAW_BULK_ID.search(text), f"raw subject id in an alert: {text}"


def build(sc: dict[str, Any]) -> tuple[Engine, Detector]:
    engine = Engine(parse_policy(sc["policy"], "fuzz"), Pseudonymizer(KEY), default_rules())
    for d in sc["directory"]:
        engine.apply_directory(decode(DIRECTORY, d))
    for s in sc["subjects"]:
        engine.apply_subject(decode(SUBJECT_RECORDS, s))
    return engine, Detector(engine, Reorderer(lateness=sc["lateness"]))


def run_scenario(sc: dict[str, Any],
                 pushes: Callable[[list[AccessEvent]], list[tuple[int, int]]] | None = None,
                 ) -> list[Alert]:
    """Run ``sc`` and check every alert. ``pushes``: (event index, partition) in arrival order
    (default: the events in order, on the plan's partitions, with the plan's interruptions)."""
    engine, detector = build(sc)
    late = list(sc["late_records"])
    alerts: list[Alert] = []
    pushed: set[str] = set()
    accounts: set[str] = set()
    datasets: set[str] = set()
    last_t = 0.0
    evs = [decode(EVENTS, doc) for doc in sc["events"]]
    order = pushes(evs) if pushes is not None else [
        (i, p) for i, (p, _) in enumerate(sc["plan"])]
    for i, partition in order:
        ev = evs[i]
        t = epoch(ev.timestamp)
        action = sc["plan"][i][1] if pushes is None else ""
        if action == "idle":
            alerts.extend(detector.idle((partition + 1) % 3))
        elif action == "evict":
            engine.evict(last_t - detector.horizon())
        elif action == "swap" and sc["policy2"] is not None:
            engine.set_policy(parse_policy(sc["policy2"], "fuzz2"))
        elif action in ("directory", "subject") and late:
            kind, rec = late.pop()
            if kind == "directory":
                engine.apply_directory(decode(DIRECTORY, rec))
            else:
                engine.apply_subject(decode(SUBJECT_RECORDS, rec))
        pushed.add(ev.event.id)
        accounts.add(ev.user.id)
        if ev.event.dataset:
            datasets.add(ev.event.dataset)
        alerts.extend(detector.push(ev, t, partition).alerts)
        last_t = max(last_t, t)
    alerts.extend(detector.flush())
    stats = detector.order.stats
    assert len(detector.order) == 0
    assert detector.processed == stats.released
    assert stats.released + stats.duplicates == len(order)
    assert engine.tracked() >= 0
    for a in alerts:
        check_alert(a, pushed, accounts, datasets)
        FIRED[a.rule] += 1
        event(a.rule)
    return alerts
