"""The daemon's service and pipeline with the in-memory source and sinks (no servers).

What these prove: the live path gives replay's alerts; offsets are committed only past events
that left the reorder buffer and whose alerts every sink accepted; a sink that is down slows
consumption without losing anything; a restart's re-read rebuilds windows without
re-alerting; redelivered events and invalid documents are handled as the contract says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.daemon.helpers import World, replay_alerts, wait_for
from tests.services.exposition import metric_value
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.deadletter import MemoryDeadLetters
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sinks.memory import MemorySink
from watchdog.daemon.sources.memory import MemorySource
from watchdog.rules import ORDERED


def service(world: World, feed: dict[int, list[bytes | None]], *,
            sinks: Sequence[MemorySink] | None = None, dead: MemoryDeadLetters | None = None,
            overrides: dict[str, Any] | None = None, **source: Any
            ) -> tuple[Service, Callable[[], MemorySource]]:
    cfg = load_config(None, overrides={"delivery.retry_initial_seconds": 0.01,
                                       "delivery.retry_max_seconds": 0.05, **(overrides or {})})
    made: list[MemorySource] = []

    def factory(p: Pipeline) -> MemorySource:
        src = MemorySource(p, len(feed), **source)
        for part, docs in feed.items():
            src.feed(part, docs)
        made.append(src)
        return src

    svc = Service(cfg, world.engine(), sinks=list(sinks or [MemorySink()]),
                  dead_letters=dead or MemoryDeadLetters(), sources=[factory], kafka=False,
                  listen=False)
    return svc, lambda: made[0]


def event_time(raw: bytes) -> float:
    return datetime.fromisoformat(orjson.loads(raw)["@timestamp"]).timestamp()


async def stop(svc: Service, run: asyncio.Task[int]) -> None:
    svc.request_stop()
    assert await asyncio.wait_for(run, 10) == 0


async def test_gives_the_alerts_replay_gives_and_commits_everything(world: World) -> None:
    feed = world.partitioned(4)
    sink = MemorySink()
    svc, src = service(world, feed, sinks=[sink])  # type: ignore[arg-type]
    run = asyncio.create_task(svc.run())
    await wait_for(lambda: sink.ids >= set(world.expected), what="every alert")
    await stop(svc, run)
    assert sink.ids == set(world.expected)
    assert len(sink.alerts) == len(sink.ids)
    assert all(a.detected_at for a in sink.alerts)
    assert src().committed == {p: len(docs) for p, docs in feed.items() if docs}
    assert (svc.metrics.registry.get_sample_value("watchdog_event_to_alert_seconds_sum") or 0) > 0
    assert svc.pipeline.order.stats.late == 0


async def test_a_sink_that_is_down_slows_consumption_and_loses_nothing(world: World) -> None:
    feed: dict[int, list[bytes | None]] = {0: list(world.events)}
    up, down = MemorySink("up"), MemorySink("down")
    down.down = True
    svc, src = service(world, feed, sinks=[up, down], batch=200, max_pending=2)
    run = asyncio.create_task(svc.run())
    await wait_for(lambda: down.attempts >= 3 and src().paused, what="the source paused")
    # paused: not everything consumed, nothing committed past the undelivered alerts
    assert src().consumed < len(world.events)
    first_pending = min(p.offset for box in svc.delivery.outboxes for p in box._items)
    assert src().committed.get(0, 0) <= first_pending
    assert metric_value(svc.metrics.sink_errors.labels("down")) >= 3
    assert not down.alerts
    down.down = False
    await wait_for(lambda: down.ids >= set(world.expected), what="delivery after recovery")
    await stop(svc, run)
    assert up.ids == down.ids == set(world.expected)
    assert len(down.alerts) == len(down.ids)  # each accepted alert was sent once
    assert src().committed == {0: len(world.events)}


async def test_commit_stops_at_the_first_event_still_held(world: World) -> None:
    # partition 1 sends one early event and then stays quiet (not idle for a minute): the
    # watermark stays there and partition 0's later events wait in the reorder buffer
    events = world.events[:3000]
    feed: dict[int, list[bytes | None]] = {0: list(events[1:]), 1: [events[0]]}
    svc, src = service(world, feed, idle_after=60.0,
                       overrides={"detection.lateness_seconds": 0.0})
    run = asyncio.create_task(svc.run())
    p = svc.pipeline
    await wait_for(lambda: src().consumed == len(events), what="everything consumed")
    await wait_for(lambda: 0 in src().committed or len(p.order) == len(events) - 1,
                   what="the first commit")
    t0 = event_time(events[0])
    first_held = next(i for i, e in enumerate(events[1:]) if event_time(e) > t0)
    assert len(p.order) == len(events) - 1 - first_held
    assert p.books[0].safe() == first_held
    p.mark_idle(1)  # partition 1 goes quiet for good: partition 0 alone sets the watermark
    p.mark_idle(0)
    await wait_for(lambda: src().committed.get(0) == len(events) - 1, what="commit to the end")
    await stop(svc, run)


def _held_back(world: World) -> tuple[list[bytes], dict[int, list[bytes | None]], set[str]]:
    """Partition 1 sends the first event, then nothing (not idle for a minute); partition 0
    sends the rest. With no lateness, partition 0's events after the first one's time wait in
    the reorder buffer: the alerts they complete, by id."""
    events = list(world.events)
    feed: dict[int, list[bytes | None]] = {0: events[1:], 1: [events[0]]}
    t0 = event_time(events[0])
    when = {orjson.loads(e)["event"]["id"]: event_time(e) for e in events}
    held = {a for a, eid in world.expected.items() if when[eid] > t0}
    return events, feed, held


async def test_alerts_that_need_no_other_event_do_not_wait_for_the_buffer(world: World) -> None:
    events, feed, held = _held_back(world)
    alone = {a for a in held if a.split(":")[0] not in ORDERED}
    ordered = held - alone
    assert alone
    assert ordered
    sink = MemorySink()
    svc, src = service(world, feed, sinks=[sink], idle_after=60.0,  # type: ignore[arg-type]
                       overrides={"detection.lateness_seconds": 0.0})
    run = asyncio.create_task(svc.run())
    p = svc.pipeline
    await wait_for(lambda: src().consumed == len(events), what="everything consumed")
    await wait_for(lambda: sink.ids >= alone, what="the alerts of event-alone rules")
    assert len(p.order) > 0  # their events are still buffered
    assert not sink.ids & ordered  # window rules wait for the order
    p.mark_idle(1)
    p.mark_idle(0)
    await wait_for(lambda: sink.ids >= set(world.expected), what="every alert")
    await stop(svc, run)
    assert sink.ids == set(world.expected)
    assert len(sink.alerts) == len(sink.ids)


async def test_an_early_alert_holds_its_record_until_delivered(world: World) -> None:
    events, feed, held = _held_back(world)
    offset = {orjson.loads(e or b"")["event"]["id"]: off for off, e in enumerate(feed[0])}
    alone = {a for a in held if a.split(":")[0] not in ORDERED}
    first = min(offset[world.expected[a]] for a in alone)
    sink = MemorySink()
    sink.down = True
    svc, src = service(world, feed, sinks=[sink], idle_after=60.0,  # type: ignore[arg-type]
                       overrides={"detection.lateness_seconds": 0.0})
    run = asyncio.create_task(svc.run())
    p = svc.pipeline
    await wait_for(lambda: src().consumed == len(events), what="everything consumed")
    await wait_for(lambda: svc.delivery.pending >= 1, what="an early alert waiting")
    p.mark_idle(1)
    p.mark_idle(0)  # every event leaves the buffer; the early alert is still not delivered
    await wait_for(lambda: len(p.order) == 0, what="the buffer emptied")
    src().commit()
    assert p.books[0].safe() <= first
    assert src().committed.get(0, 0) <= first
    sink.down = False
    await wait_for(lambda: sink.ids >= set(world.expected), what="every alert")
    await wait_for(lambda: src().committed.get(0) == len(feed[0]), what="commit to the end")
    await stop(svc, run)


async def test_restart_rebuilds_windows_without_realerting(world: World) -> None:
    """Committed halfway: the first half is re-read only to rebuild windows."""
    feed = world.partitioned(2)
    ids = [orjson.loads(e)["event"]["id"] for e in world.events]
    completing = sorted(ids.index(eid) for eid in world.expected.values())
    split = set(ids[:completing[len(completing) // 2] + 1])  # half the alerts behind us
    where = {}
    for part, docs in feed.items():
        for off, raw in enumerate(docs):
            where[orjson.loads(raw)["event"]["id"]] = (part, off)
    resume = {p: sum(orjson.loads(d)["event"]["id"] in split for d in docs)
              for p, docs in feed.items()}
    new = {a for a, eid in world.expected.items() if where[eid][1] >= resume[where[eid][0]]}
    old = set(world.expected) - new
    assert new
    assert old
    sink = MemorySink()
    svc, _src = service(world, feed, sinks=[sink], resume=resume)  # type: ignore[arg-type]
    run = asyncio.create_task(svc.run())
    await wait_for(lambda: sink.ids >= new, what="the new alerts")
    await stop(svc, run)
    assert sink.ids == new
    assert svc.pipeline.suppressed == len(old)
    assert metric_value(svc.metrics.deduplicated) == len(old)


async def test_redelivered_events_are_dropped_and_alert_once(world: World) -> None:
    events = list(world.events)
    again = events[-100:]
    sink = MemorySink()
    svc, _src = service(world, {0: [*events, *again]}, sinks=[sink])  # type: ignore[arg-type]
    run = asyncio.create_task(svc.run())
    await wait_for(lambda: svc.pipeline.detector.processed == len(events), what="processing")
    await wait_for(lambda: sink.ids >= set(world.expected), what="every alert")
    await stop(svc, run)
    assert sink.ids == set(world.expected)
    assert len(sink.alerts) == len(sink.ids)
    assert metric_value(svc.metrics.duplicate) == len(again)


async def test_invalid_documents_are_dead_lettered_untouched(world: World) -> None:
    bad = [b"{oops", b'{"@timestamp":"2026-11-01T00:00:00Z"}', b"\xff" * 10, None,
           b'{"@timestamp":"2026-11-01T00:00:00Z","event":{"id":"x","action":"teleport"},'
           b'"user":{"id":"e1"}}']
    events = world.events[:200]
    feed: dict[int, list[bytes | None]] = {0: [*events[:100], *bad, *events[100:]]}
    dead = MemoryDeadLetters()
    svc, src = service(world, feed, dead=dead)
    run = asyncio.create_task(svc.run())
    await wait_for(lambda: len(dead.letters) == len(bad), what="dead letters")
    await wait_for(lambda: src().committed.get(0) == len(feed[0]), what="commit past them")
    await stop(svc, run)
    got = {d.offset: d for d in dead.letters}
    assert [got[100 + i].raw for i in range(len(bad))] == [b or b"" for b in bad]
    assert [got[100 + i].reason for i in range(len(bad))] == [
        "not_json", "missing_field", "not_json", "not_json", "invalid_value"]
    assert all(d.topic == "memory" and d.partition == 0 for d in dead.letters)
    headers = dict(dead.letters[0].headers())
    assert set(headers) == {"reason", "detail", "source_topic", "source_partition",
                            "source_offset"}
    assert "teleport" not in got[104].detail  # values are not repeated in details
    assert metric_value(svc.metrics.invalid.labels("not_json")) == 3


async def test_sighup_reloads_the_policy_and_keeps_state(world: World, tmp_path: Any) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(world.policy.read_text())
    svc, _src = service(world, {0: world.events[:500]}, overrides={"policy": str(policy)})
    run = asyncio.create_task(svc.run())
    await wait_for(lambda: svc.pipeline.detector.processed > 0, what="processing")
    tracked = svc.engine.tracked()
    svc.reload_policy()
    assert metric_value(svc.metrics.reloads.labels("ok")) == 1
    policy.write_text("roles: {x: {categories: [not_a_category]}}\n")
    before = svc.engine.policy
    svc.reload_policy()
    assert metric_value(svc.metrics.reloads.labels("error")) == 1
    assert svc.engine.policy is before  # a bad file leaves the running policy alone
    assert svc.engine.tracked() >= tracked
    await stop(svc, run)


@pytest.mark.parametrize("failures", [1, 3])
async def test_a_failing_sink_is_retried_until_it_accepts(world: World, failures: int) -> None:
    sink = MemorySink()
    sink.fail_next = failures
    svc, _src = service(world, {0: list(world.events)}, sinks=[sink])  # type: ignore[arg-type]
    run = asyncio.create_task(svc.run())
    await wait_for(lambda: sink.ids >= set(world.expected), what="every alert")
    await stop(svc, run)
    assert sink.ids == set(world.expected)
    assert metric_value(svc.metrics.sink_errors.labels("memory")) == failures


async def test_a_reused_event_id_with_other_content_is_processed_and_counted(
        world: World, tmp_path: Path) -> None:
    events = list(world.events[:2000])
    doc = orjson.loads(events[-1])
    # a redelivery written otherwise (key order): dropped; the id reused for a copy to a USB
    # stick: processed, and its alert is sent as replay sends it
    redelivered = orjson.dumps(dict(reversed(list(doc.items()))))
    reused = orjson.dumps({**doc, "event": {**doc["event"], "action": "copy"},
                           "destination": {"kind": "external_media"}})
    stream = [*events, redelivered, reused]
    expected = replay_alerts(stream, world.directory, world.subjects, world.policy,
                             tmp_path / "a")
    assert set(expected) - set(replay_alerts(events, world.directory, world.subjects,
                                             world.policy, tmp_path / "b"))  # its own alert
    sink = MemorySink()
    svc, src = service(world, {0: stream}, sinks=[sink])  # type: ignore[arg-type]
    run = asyncio.create_task(svc.run())
    await wait_for(lambda: sink.ids >= set(expected), what="every alert")
    await wait_for(lambda: src().committed.get(0) == len(stream), what="commit to the end")
    await stop(svc, run)
    assert sink.ids == set(expected)
    assert metric_value(svc.metrics.duplicate) == 1
    assert metric_value(svc.metrics.id_conflicts) == 1
