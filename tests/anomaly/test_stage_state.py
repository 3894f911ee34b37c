"""The anomaly stage's saved state: a stage restored from :meth:`AnomalyStage.snapshot` at any
point continues exactly as the uninterrupted one (window alerts and person-level risk alerts,
whole documents); after a crash, the records read again are ignored up to the frontier; bytes
that cannot be used are refused and leave the stage as it was.

The scenario (:func:`scenario_docs`): a week, a leaver, an insider, its times cut to the minute
so that many events share a time (the frontier's ids matter), fed as the Detector
feeds the stage: each released list's rule alerts (``observe_alerts``), then the list
(``observe_many``), drains between lists, and now and then single events (``observe``: the
events not taken apart yet are state too).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from tests.anomaly.conftest import T0, baseline, decode, event, make_engine
from watchdog.alerts.model import Alert, encode_alert
from watchdog.anomaly import day_baseline, store
from watchdog.anomaly.model import AnomalyModel
from watchdog.anomaly.stage import AnomalyStage
from watchdog.anomaly.stage_state import MAGIC, StateError, head
from watchdog.events import AccessEvent


def scenario_docs() -> list[dict]:
    """A week of office work for 30 accounts; from day 5 on, a leaver (u010) reads about 2.5x
    its usual customers every working day (the day scale and the risk see it; no hour is far
    out); on the nights of days 5 and 7 the insider (u004) copies customers to a USB stick
    (window alerts, and its risk, which escalates the second night). Times cut to the minute:
    events share times."""
    docs = baseline(n_accounts=30, days=7, seed=5)
    rng = random.Random(7)
    n = 0
    for d in range(4, 7):
        day0 = T0 + d * 86400
        for h in range(9):
            for _ in range(5):
                t = day0 + h * 3600 + rng.uniform(600, 3600)
                ids = tuple(f"c{rng.randint(0, 5000):05d}" for _ in range(rng.randint(2, 4)))
                docs.append(event(t, "u010", f"v{n}", "read", resource="billing.payments",
                                  categories=("identity", "payment"), ids=ids, records=len(ids),
                                  ip="10.1.10.2", nbytes=rng.randint(500, 5000)))
                n += 1
    for d in (4, 6):
        t = T0 + d * 86400 + 13 * 3600  # 22:00 JST
        docs += [event(t + i * 40, "u004", f"x{d}-{i}", "copy", resource="billing.payments",
                       categories=("payment", "identity", "health"),
                       ids=tuple(f"c9{i:03d}{k}" for k in range(20)), records=20,
                       ip="10.99.1.1", dest={"kind": "external_media"}) for i in range(60)]
    for doc in docs:
        doc["@timestamp"] = doc["@timestamp"][:17] + "00.000Z"
    return sorted(docs, key=lambda doc: (doc["@timestamp"], doc["event"]["id"]))


def _scenario() -> tuple[list[tuple[AccessEvent, float]], list[list[Alert]]]:
    events = [(ev, ev.timestamp.timestamp()) for ev in map(decode, scenario_docs())]
    engine = make_engine()  # the rules' alerts, per event, as the Detector hands them over
    return events, [engine.process(ev, t) for ev, t in events]


EVENTS, RULES = _scenario()
TIMES = [t for _, t in EVENTS]
N = len(EVENTS)
Step = tuple[Any, ...]  # ("many", lo, hi) | ("one", i) | ("drain",)


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> AnomalyModel:
    return store.load(tiny_model)


def fresh(model: AnomalyModel) -> AnomalyStage:
    return AnomalyStage(model, make_engine(), warmup=6 * 3600.0)


def run(stage: AnomalyStage, steps: list[Step]) -> list[Alert]:
    out: list[Alert] = []
    for step in steps:
        if step[0] == "many":
            _, lo, hi = step
            rules = [a for r in RULES[lo:hi] for a in r]
            if rules:
                stage.observe_alerts(rules)
            out += stage.observe_many(EVENTS[lo:hi])
        elif step[0] == "one":
            if RULES[step[1]]:
                stage.observe_alerts(RULES[step[1]])
            out += stage.observe(*EVENTS[step[1]])
        else:
            out += stage.drain()
    return out


def comparable(alerts: list[Alert]) -> list[bytes]:
    """Whole alert documents less ``detected_at`` (wall time), sorted."""
    out = []
    for a in alerts:
        doc = orjson.loads(encode_alert(a))
        doc.pop("detected_at", None)
        out.append(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    return sorted(out)


def is_risk(a: Alert) -> bool:
    return a.rule == "anomaly" and bool(a.explanation) and a.explanation.get("kind") == "risk"


def steps_from(lo: int, sizes: list[int], drains: list[bool], singles: list[bool],
               hi: int = N) -> list[Step]:
    steps: list[Step] = []
    k = 0
    while lo < hi:
        size = sizes[k % len(sizes)]
        if singles[k % len(singles)]:
            steps += [("one", i) for i in range(lo, min(hi, lo + min(size, 80)))]
            lo = min(hi, lo + min(size, 80))
        else:
            steps.append(("many", lo, min(hi, lo + size)))
            lo = min(hi, lo + size)
        if drains[k % len(drains)]:
            steps.append(("drain",))
        k += 1
    return steps


def plan(sizes: list[int], drains: list[bool], singles: list[bool]) -> list[Step]:
    return [*steps_from(0, sizes, drains, singles), ("flush",)]


def run_all(stage: AnomalyStage, steps: list[Step]) -> list[Alert]:
    out = run(stage, [s for s in steps if s[0] != "flush"])
    return out + (stage.flush() if steps and steps[-1][0] == "flush" else [])


def resumed(model: AnomalyModel, steps: list[Step], cut: int,
            ) -> tuple[list[Alert], list[Alert], list[Alert]]:
    """The uninterrupted run's alerts up to step ``cut`` and after it, and the alerts of a
    stage restored there."""
    a = fresh(model)
    before = run_all(a, steps[:cut])
    blob = a.snapshot()
    b = fresh(model)
    b.restore(blob)
    assert b.snapshot() == blob  # idempotent (a forgotten field shows in the property)
    return before, run_all(a, steps[cut:]), run_all(b, steps[cut:])


DEFAULT = plan([37, 200, 5, 600], [False, True, False], [False] * 7 + [True])


@pytest.fixture(scope="module")
def reference(model: AnomalyModel) -> list[tuple[int, Alert]]:
    """The uninterrupted run's anomaly alerts with the step that raised each."""
    stage = fresh(model)
    got = []
    for i, step in enumerate(DEFAULT):
        got += [(i, a) for a in run_all(stage, [step]) if a.rule == "anomaly"]
    return got


def test_the_scenario_raises_window_and_risk_alerts(reference: list[tuple[int, Alert]]) -> None:
    """What the cuts must carry over: window alerts on two nights, risk alerts that rest on
    the usual day (the leaver's) and on the insider's earlier risk (its escalation)."""
    windows = {a.ts[:10] for _, a in reference if not is_risk(a)}
    assert len(windows) >= 2
    risk = [a for _, a in reference if is_risk(a)]
    assert any(c["kind"] == "day" for a in risk for c in a.explanation["contributions"])
    assert any("escalated_from" in a.explanation for a in risk)


def cut_at(reference: list[tuple[int, Alert]], where: str) -> int:
    window = [i for i, a in reference if not is_risk(a)]
    risk = [i for i, a in reference if is_risk(a)]
    return {"start": 0, "before_first_window": window[0], "after_first_window": window[0] + 1,
            "after_first_risk": risk[0] + 1, "before_last_risk": risk[-1],
            "before_last_window": window[-1], "before_flush": len(DEFAULT) - 1}[where]


@pytest.mark.parametrize("where", ["start", "before_first_window", "after_first_window",
                                   "after_first_risk", "before_last_risk",
                                   "before_last_window", "before_flush"])
def test_a_restored_stage_continues_as_the_uninterrupted_one(
        model: AnomalyModel, reference: list[tuple[int, Alert]], where: str) -> None:
    _, want, got = resumed(model, DEFAULT, cut_at(reference, where))
    assert comparable(got) == comparable(want)
    if where != "before_flush":  # the cut is before alerts it must raise
        assert any(a.rule == "anomaly" for a in want)


def test_a_restored_stage_marks_its_usual_days_again(
        model: AnomalyModel, reference: list[tuple[int, Alert]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A usual day belongs to its account by a hash of its id of this process; restored in
    another process (another salt) the accounts keep their usual days."""
    cut = cut_at(reference, "after_first_window")
    a = fresh(model)
    run_all(a, DEFAULT[:cut])
    blob = a.snapshot()
    want = run_all(a, DEFAULT[cut:])
    plain = day_baseline.owners
    monkeypatch.setattr(day_baseline, "owners", lambda users: plain([f"~{u}" for u in users]))
    b = fresh(model)
    b.restore(blob)
    assert comparable(run_all(b, DEFAULT[cut:])) == comparable(want)


calls = st.tuples(st.lists(st.integers(0, 9).map(lambda k: 2**k), min_size=1, max_size=12),
                  st.lists(st.booleans(), min_size=1, max_size=5),
                  st.lists(st.integers(0, 11).map(lambda k: k == 0), min_size=1, max_size=12))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(how=calls, at=st.floats(0.0, 1.0))
def test_property_snapshot_and_restore_anywhere(model: AnomalyModel, how: Any, at: float,
                                                ) -> None:
    steps = plan(*how)
    cut = int(at * (len(steps) - 1))
    before, want, got = resumed(model, steps, cut)
    assert comparable(got) == comparable(want)
    every = before + want  # not trivially: the run raises both kinds, the cut falls anywhere
    assert any(map(is_risk, every))
    assert any(a.rule == "anomaly" and not is_risk(a) for a in every)
    note_event(f"window alerts after the cut: {sum(not is_risk(a) for a in want) > 0}")
    note_event(f"risk alerts after the cut: {sum(map(is_risk, want)) > 0}")
    note_event(f"risk alerts before the cut: {sum(map(is_risk, before)) > 0}")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(how=calls, at=st.floats(0.0, 1.0), tie=st.booleans(), back=st.floats(0.0, 1.0),
       again=calls)
def test_after_a_crash_records_read_again_are_ignored(model: AnomalyModel, how: Any, at: float,
                                                      tie: bool, back: float, again: Any,
                                                      ) -> None:
    """Snapshot at event k; the uninterrupted stage goes on; a stage restored from k is fed
    the events again from an earlier j (records the daemon reads again, some at the very
    frontier time), with their rule alerts: it raises exactly what the other raised after k."""
    k = 1 + int(at * (N - 3))
    if tie:  # the cut inside a group of events of one time
        k = next((i for i in range(max(k, 2), N - 1) if TIMES[i - 2] == TIMES[i - 1] == TIMES[i]),
                 k)
    a = fresh(model)
    run_all(a, steps_from(0, *how, hi=k))
    blob = a.snapshot()
    assert a.frontier == TIMES[k - 1]
    want = run_all(a, [*steps_from(k, *how), ("flush",)])
    # from j: at most 6 hours back (the daemon reads again what was not committed: minutes)
    j = k - int(back * sum(1 for i in range(k) if TIMES[k - 1] - TIMES[i] <= 6 * 3600))
    b = fresh(model)
    b.restore(blob)
    got = run_all(b, [*steps_from(j, *again), ("flush",)])
    assert comparable(got) == comparable(want)
    at_frontier = any(TIMES[i] == TIMES[k - 1] for i in range(j, k - 1))
    note_event(f"events again at the frontier time: {at_frontier}")


def test_the_frontier_drops_only_what_the_state_holds(model: AnomalyModel) -> None:
    a = fresh(model)
    assert a.frontier == float("-inf")
    # cut inside a group of events of one time
    k = next(i for i in range(N // 2, N) if TIMES[i] == TIMES[i - 1] == TIMES[i + 1]) + 1
    run_all(a, [("many", 0, k)])
    b = fresh(model)
    b.restore(a.snapshot())
    assert b.frontier == TIMES[k - 1]
    assert b._unheld(EVENTS[:k + 1]) == [EVENTS[k]]  # the one at the frontier time not seen
    assert b._unheld(EVENTS[k - 1:k]) == []


# -- refusals --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blob(model: AnomalyModel) -> bytes:
    stage = fresh(model)
    run_all(stage, steps_from(0, [300], [True], [False], hi=N // 2))
    return stage.snapshot()


def _reseal(blob: bytes, payload: bytes) -> bytes:
    return blob[:8] + hashlib.sha256(payload).digest() + payload


@pytest.mark.parametrize("how", ["corrupt", "truncated", "magic", "version", "empty"])
def test_unusable_bytes_are_refused(model: AnomalyModel, blob: bytes, how: str) -> None:
    bad = {"corrupt": blob[:len(blob) // 2] + bytes([blob[len(blob) // 2] ^ 1])
           + blob[len(blob) // 2 + 1:],
           "truncated": blob[:-100], "magic": b"WDCKPT\x00\x01" + blob[8:],
           "version": MAGIC[:7] + b"\x02" + blob[8:], "empty": b""}[how]
    stage = fresh(model)
    before = stage.snapshot()
    with pytest.raises(StateError) as err:
        stage.restore(bad)
    assert "\n" not in str(err.value)
    assert stage.snapshot() == before


def _payload(blob: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.msgpack.decode(blob[40:])
    return doc


def _sealed(blob: bytes, doc: dict[str, Any]) -> bytes:
    return _reseal(blob, msgspec.msgpack.encode(doc))


@pytest.mark.parametrize("change", ["feature_version", "window_features", "rows", "shape",
                                    "content"])
def test_another_layout_or_content_is_refused_and_changes_nothing(
        model: AnomalyModel, blob: bytes, change: str) -> None:
    doc = _payload(blob)
    if change == "feature_version":
        doc["layout"]["feature_version"] -= 1
    elif change == "window_features":
        doc["layout"]["window_features"] = doc["layout"]["window_features"][:-1]
    elif change == "rows":
        doc["layout"]["rows"][0][1] = [doc["layout"]["rows"][0][1][0] + 1]
    elif change == "shape":  # an account row array one row short
        dt, shape, raw = doc["features"]["rows"][3]
        raw = msgspec.msgpack.Ext(raw.code, raw.data[:-len(raw.data) // shape[0]])
        doc["features"]["rows"][3] = [dt, [shape[0] - 1, *shape[1:]], raw]
    else:  # the ledger's accounts garbled (past the checks of the parts before it)
        doc["risk"]["ledger"]["accounts"] = [["u004", "not a number"]]
    stage = fresh(model)
    before = stage.snapshot()
    with pytest.raises(StateError) as err:
        stage.restore(_sealed(blob, doc))
    msg = str(err.value)
    assert "\n" not in msg
    assert "u0" not in msg  # no account id
    assert stage.snapshot() == before
    assert stage.frontier == float("-inf")
    # and the refused stage still works as a fresh one
    assert comparable(run_all(stage, DEFAULT)) == comparable(run_all(fresh(model), DEFAULT))


def test_another_model_version_is_accepted(model: AnomalyModel, blob: bytes) -> None:
    other = dataclasses.replace(model, version="other-version")
    stage = AnomalyStage(other, make_engine(), warmup=6 * 3600.0)
    stage.restore(blob)
    got = [a for a in run_all(stage, [*steps_from(N // 2, [300], [True], [False]), ("flush",)])
           if a.rule == "anomaly" and not is_risk(a)]
    assert got
    assert {a.labels["model_version"] for a in got} == {"other-version"}


def test_the_property_has_power(model: AnomalyModel, reference: list[tuple[int, Alert]],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore that forgets one part (here the usual days) is caught: the alerts differ.
    (Forgetting the ledger, the peers' live baselines, the own baselines, the uncommitted
    events, the pending windows, the waiting day evidence or the cool-downs each changed the
    alerts at 4-15 of 16 cuts of the property's kind.)"""
    cut = cut_at(reference, "after_first_risk")
    a = fresh(model)
    run_all(a, DEFAULT[:cut])
    blob = a.snapshot()
    want = run_all(a, DEFAULT[cut:])
    monkeypatch.setattr(day_baseline.DayBaselines, "load_state",
                        lambda self, doc, users: None)
    b = fresh(model)
    b.restore(blob)
    assert comparable(run_all(b, DEFAULT[cut:])) != comparable(want)


def test_restore_takes_a_view(model: AnomalyModel, blob: bytes) -> None:
    """The daemon reads its file as a view (no copy of a large state)."""
    framed = b"header" + blob
    stage = fresh(model)
    stage.restore(memoryview(framed)[6:])
    assert stage.snapshot() == blob


def test_snapshot_in_parts_is_the_same_bytes(model: AnomalyModel) -> None:
    stage = fresh(model)
    run_all(stage, steps_from(0, [300], [True], [False], hi=N // 3))
    first, payload = stage.snapshot_parts()
    assert len(first) == 40
    assert first + payload == stage.snapshot()
    assert stage.snapshot_payload() == payload
    assert head(payload) == first
