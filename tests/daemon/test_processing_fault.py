"""One event (or state record) whose processing raises does not stop detection.

A bug that one valid event triggers used to end the daemon (exit 1, "fatal"); restarted, it
read the same uncommitted record and died again: no detection at all, for good. Now the
event is skipped with one log line, counted as
``watchdog_events_invalid_total{reason="processing_error"}``, and replay does the same, so
live still equals replay. A state record whose application raises is dead-lettered as
``processing_error``. The bug is injected (the engine raises for one event id, for one
account's directory record); the daemon and the broker (Tansu) are real.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.daemon.helpers import World, cancel_all, replay_alerts, service, stop_all, wait_for
from tests.daemon.kafkautil import daemon_config, make_topics, produce, produce_state, read_all
from tests.services.exposition import metric_value
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.metrics import Metrics
from watchdog.decode import Decoder
from watchdog.engine.detector import STAGE_LIST, Detector
from watchdog.engine.engine import Engine
from watchdog.events import AccessEvent, DirectoryRecord

pytestmark = pytest.mark.integration


def inject(monkeypatch: pytest.MonkeyPatch, event_id: str, user_id: str) -> None:
    process, apply_directory = Engine.process, Engine.apply_directory

    def failing(self: Engine, ev: AccessEvent, *a: Any, **kw: Any) -> Any:
        if ev.event.id == event_id:
            raise KeyError("a value from the event")  # its message is not logged
        return process(self, ev, *a, **kw)

    def failing_directory(self: Engine, rec: DirectoryRecord, *a: Any, **kw: Any) -> None:
        if rec.user_id == user_id:
            raise ValueError("a value from the record")
        apply_directory(self, rec, *a, **kw)

    monkeypatch.setattr(Engine, "process", failing)
    monkeypatch.setattr(Engine, "apply_directory", failing_directory)


def test_without_a_handler_the_error_propagates(world: World,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = orjson.loads(world.events[0])["event"]["id"]
    inject(monkeypatch, target, "nobody")
    ev = Decoder(AccessEvent).decode(world.events[0])
    assert isinstance(ev, AccessEvent)
    detector = Detector(world.engine(), None, [], early=True)
    with pytest.raises(KeyError):  # judged on arrival
        detector.push(ev, ev.timestamp.timestamp())
    detector = Detector(world.engine(), None, [])
    detector.push(ev, ev.timestamp.timestamp())
    with pytest.raises(KeyError):  # judged in order
        detector.flush()
    faults: list[str] = []
    detector = Detector(world.engine(), None, [], early=True)
    detector.on_fault = lambda e, err: faults.append(e.event.id)
    detector.push(ev, ev.timestamp.timestamp())
    detector.flush()
    assert faults == [target]  # once, though it is judged on arrival and in order
    assert detector.processed == 1


async def test_an_event_that_raises_is_skipped_as_replay_skips_it(
        tansu_broker, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an event that completes an alert, and an account that is not in any alert
    target = sorted(world.expected.values())[len(world.expected) // 2]
    directory_user = orjson.loads(world.directory[-1])["user_id"]
    records = [r for r in world.directory if orjson.loads(r)["user_id"] == directory_user]
    inject(monkeypatch, target, directory_user)
    expected = replay_alerts(world.events, world.directory, world.subjects, world.policy,
                             tmp_path / "replay")  # with the same bug
    assert target not in expected.values()

    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=2)
    await produce_state(bs, world)
    await produce(bs, "access-logs", world.events, key="user", event_time=True)
    svc = service(load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs,
                                                sinks={"kafka": {}}))), world)
    run = asyncio.create_task(svc.run())
    failed = svc.metrics.invalid.labels("processing_error")
    try:
        await wait_for(lambda: svc.pipeline.detector.processed == len(world.events),
                       within=60, what="every event processed, the daemon still running")
        await wait_for(lambda: metric_value(failed) == 1 + len(records) and len(svc.dlq) == 0,
                       within=20, what="the event and the records counted, those dead-lettered")
        assert not run.done()
        await stop_all([svc], [run], 20)
    finally:
        cancel_all([svc], [run])
    on_topic = sorted(r.key.decode() for r in await read_all(bs, "alerts"))
    assert on_topic == sorted(expected)  # live equals replay, with the same bug
    dlq = await read_all(bs, "access-logs.dlq")
    assert [(dict(r.headers)["reason"], dict(r.headers)["source_topic"]) for r in dlq] == [
        (b"processing_error", b"directory")] * len(records)
    assert [r.value for r in dlq] == records  # untouched
    assert all(b"a value from" not in dict(r.headers)["detail"] for r in dlq)


class FailingStage:
    """A stage with a bug: its call over a released list holding ``target`` raises (a fake
    stage: what is tested is the detector's and the daemon's handling, not a stage)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen: list[str] = []

    def observe(self, ev: AccessEvent, t: float) -> list[Any]:
        raise AssertionError("observe_many is called instead")

    def observe_many(self, items: Any) -> list[Any]:
        ids = [ev.event.id for ev, _ in items]
        if self.target in ids:
            raise KeyError("a value from the event")  # its message is not logged
        self.seen.extend(ids)
        return []

    def flush(self) -> list[Any]:
        return []


def _push_all(detector: Detector, evs: list[Any]) -> list[Any]:
    alerts: list[Any] = []
    for ev in evs:
        alerts.extend(detector.push(ev, ev.timestamp.timestamp()).alerts)
    return alerts + detector.flush()


def test_a_stage_that_raises_on_a_list_loses_only_that_list(world: World) -> None:
    evs = [Decoder(AccessEvent).decode(d) for d in world.events]
    assert all(isinstance(ev, AccessEvent) for ev in evs)
    target = sorted(world.expected.values())[0]
    with pytest.raises(KeyError):  # without a handler the error propagates
        _push_all(Detector(world.engine(), None, [FailingStage(target)]), evs)

    stage = FailingStage(target)
    detector = Detector(world.engine(), None, [stage])
    faults: list[tuple[str, int]] = []
    detector.on_stage_fault = lambda name, n, err: faults.append((name, n))
    alerts = _push_all(detector, evs)
    assert [name for name, _ in faults] == ["FailingStage"]
    lost = faults[0][1]
    assert lost >= 1
    assert len(stage.seen) == len(evs) - lost  # only that list
    assert target not in stage.seen
    assert detector.processed == len(evs)
    # the rules judged the list the stage failed on: the alert its event completes is there
    assert target in {a.event_ids[-1] for a in alerts}


async def test_a_stage_that_raises_does_not_stop_the_daemon(
        tansu_broker, world: World, tmp_path: Path) -> None:
    target = sorted(world.expected.values())[len(world.expected) // 2]
    expected = replay_alerts(world.events, world.directory, world.subjects, world.policy,
                             tmp_path / "replay")
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=2)
    await produce_state(bs, world)
    await produce(bs, "access-logs", world.events, key="user", event_time=True)
    cfg = load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs, sinks={"kafka": {}})))
    stage = FailingStage(target)
    svc = Service(cfg, world.engine(), metrics=Metrics(), stages=[stage], listen=False)
    run = asyncio.create_task(svc.run())
    failed = svc.metrics.invalid.labels("processing_error")
    try:
        await wait_for(lambda: svc.pipeline.detector.processed == len(world.events),
                       within=60, what="every event processed, the daemon still running")
        await wait_for(lambda: metric_value(failed) == 1, within=20,
                       what="the stage's failure counted once")
        assert not run.done()
        assert target not in stage.seen
        assert stage.seen  # it went on with the next lists
        await stop_all([svc], [run], 20)
    finally:
        cancel_all([svc], [run])
    on_topic = sorted(r.key.decode() for r in await read_all(bs, "alerts"))
    assert on_topic == sorted(expected)  # every rule alert, the failed list's too


def test_a_held_batch_loses_at_most_one_stage_list(world: World) -> None:
    """The daemon's detector holds a consumed batch for the stages (``hold_stages``); they get
    it in lists of at most STAGE_LIST, so a stage's bug loses one such list, not the batch."""
    evs = [Decoder(AccessEvent).decode(d) for d in world.events]
    target = sorted(world.expected.values())[0]
    stage = FailingStage(target)
    detector = Detector(world.engine(), None, [stage], hold_stages=True)
    faults: list[tuple[str, int]] = []
    detector.on_stage_fault = lambda name, n, err: faults.append((name, n))
    for ev in evs:
        detector.push(ev, ev.timestamp.timestamp())
    held = len(evs) - len(detector.order)  # released so far: held for the stage
    assert held > STAGE_LIST  # (the world is large enough to need several lists)
    assert not stage.seen  # nothing reached the stage while held
    detector.release_stages()
    detector.flush()
    assert len(faults) == 1
    assert 1 <= faults[0][1] <= STAGE_LIST
    assert len(stage.seen) == len(evs) - faults[0][1]
    assert target not in stage.seen
