"""The detector's state through a checkpoint: stopped anywhere, written, read back into a fresh
engine, continued (with the redelivery of events the checkpoint already holds), it raises
exactly the alerts of one uninterrupted run; a checkpoint that cannot be used is refused in
one line, before anything is touched."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import BASE, KEY, account, login, policy
from tests.engine.scenario import DIRECTORY, SUBJECTS, events
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.daemon.checkpoint import MAGIC, CheckpointError, decode, encode
from watchdog.engine import snapshot
from watchdog.engine.detector import Detector
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import DUPLICATE, Reorderer
from watchdog.events import AccessEvent, epoch
from watchdog.rules import default_rules

# the departed account still enabled: account_not_revoked is judged at the first event
ACCOUNTS = [account("x-left", effective=BASE - timedelta(days=5))]


def fresh(*, records: bool = True) -> Detector:
    eng = Engine(policy(), Pseudonymizer(KEY), default_rules())
    if records:
        load_records(eng)
    # lateness 0: every event is released (in the state) as it is pushed
    return Detector(eng, Reorderer(lateness=0.0))


def load_records(eng: Engine) -> None:
    for arec in ACCOUNTS:
        eng.apply_account(arec)
    for rec in DIRECTORY:
        eng.apply_directory(rec)
    for srec in SUBJECTS:
        eng.apply_subject(srec)


def push_all(det: Detector, evs: list[AccessEvent]) -> list[str]:
    return [a.alert_id for e in evs for a in det.push(e, epoch(e.timestamp)).alerts]


def stream() -> list[AccessEvent]:
    # the scenario, and three more failed logins later: the window of the first ten matters
    more = [login(user="e1", outcome="failure", when=BASE + timedelta(minutes=21, seconds=i))
            for i in range(3)]
    return [*events(), *more]


def whole() -> list[str]:
    det = fresh()
    return [*push_all(det, stream()), *(a.alert_id for a in det.flush())]


@pytest.mark.parametrize("cut", range(0, len(stream()) + 1, 3))
def test_stopped_anywhere_and_restored_it_raises_what_one_run_raises(cut: int) -> None:
    evs = stream()
    first = fresh()
    before = push_all(first, evs[:cut])
    redelivered = evs[max(0, cut - 4):cut]  # processed, not acknowledged yet: they come again
    data = encode("test", snapshot.capture(first, [e.event.id for e in redelivered]))
    second = fresh(records=False)
    snapshot.restore(second, decode(data))
    load_records(second.engine)  # the state topics are read after the restore, as at a start
    second.engine.due.floor = float("-inf")
    pushed = [second.push(e, epoch(e.timestamp)) for e in redelivered]
    assert all(p.outcome == DUPLICATE and not p.alerts for p in pushed)
    after = push_all(second, evs[cut:]) + [a.alert_id for a in second.flush()]
    assert before + after == whole()


def test_the_scenario_exercises_the_stateful_rules() -> None:
    """(So that the test above proves something about each of them.)"""
    det = fresh()
    fired = {a.rule for e in stream() for a in det.push(e, epoch(e.timestamp)).alerts}
    assert {"brute_force", "bulk_export", "reidentification", "log_gap",
            "account_not_revoked"} <= fired
    state = snapshot.capture(det, [])
    assert {"brute_force", "bulk_export", "reidentification", "log_gap"} <= set(state["rules"])


@pytest.mark.parametrize(("mangle", "says"), [
    (lambda d: d[:20], "truncated"),
    (lambda d: d[:-5], "checksum mismatch"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum mismatch"),
    (lambda d: b"PK\x03\x04" + d[4:], "not a watchdog checkpoint"),
    (lambda d: MAGIC[:6] + b"\x00\x09" + d[8:], "format version 9"),
])
def test_an_unusable_checkpoint_is_refused_in_one_line(mangle, says: str) -> None:
    det = fresh()
    push_all(det, stream()[:10])
    data = encode("test", snapshot.capture(det, []))
    with pytest.raises(CheckpointError, match=says) as err:
        decode(mangle(data))
    assert "\n" not in str(err.value)


def test_content_of_an_unknown_shape_is_refused() -> None:
    import hashlib

    import msgspec

    payload = msgspec.msgpack.encode({"stream": "x", "written_at": 0.0, "state": {"rules": 1}})
    with pytest.raises(CheckpointError, match="unexpected content"):
        decode(MAGIC + hashlib.sha256(payload).digest() + payload)
