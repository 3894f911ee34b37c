"""Any event the decoder accepts goes through the engine without an exception, and every alert
it raises is valid against alert.schema.json and carries no raw subject id."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from tests.builders import KEY, policy
from tests.engine.scenario import DIRECTORY, SECRET_SUBJECTS, SUBJECTS
from tests.test_decode import EVENTS, valid_events
from watchdog.alerts.model import encode_alert
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.engine.detector import Detector
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import Reorderer
from watchdog.events import AccessEvent, epoch
from watchdog.rules import default_rules

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "watchdog" / "schemas"
                     / "alert.schema.json").read_bytes())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
USERS = ["e1", "e2", "m1", "d1", "x-left", "ghost"]


@st.composite
def world_event(draw: st.DrawFn) -> dict:
    doc = draw(valid_events)
    doc["user"]["id"] = draw(st.sampled_from(USERS))
    if "data" in doc and draw(st.booleans()):
        doc["data"]["subject_ids"] = draw(st.lists(st.sampled_from(SECRET_SUBJECTS), max_size=4))
    if draw(st.booleans()):
        # keep a share of events close together in time so that windows fill up
        doc["@timestamp"] = f"2026-11-18T01:{draw(st.integers(0, 59)):02d}:00Z"
    return doc


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(world_event(), max_size=25))
def test_engine_never_raises_and_alerts_are_valid(docs):
    eng = Engine(policy(thresholds={"failed_logins": 2, "bulk_export_subjects": 3,
                                    "bulk_export_subjects_per_hour": 5}),
                 Pseudonymizer(KEY), default_rules())
    for rec in DIRECTORY:
        eng.apply_directory(rec)
    for srec in SUBJECTS:
        eng.apply_subject(srec)
    det = Detector(eng, Reorderer(lateness=60))
    alerts = []
    for doc in docs:
        ev = EVENTS.decode(json.dumps(doc).encode())
        assert isinstance(ev, AccessEvent), ev
        alerts += det.push(ev, epoch(ev.timestamp)).alerts
    alerts += det.flush()
    for a in alerts:
        raw = encode_alert(a)
        assert list(VALIDATOR.iter_errors(json.loads(raw))) == []
        for sid in SECRET_SUBJECTS:
            assert sid.encode() not in raw
