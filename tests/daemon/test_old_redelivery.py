"""A redelivery older than the reorder buffer's dedupe window, against the real broker (Tansu):
another instance joins (this one keeps two partitions), five hours of events reach this one's
partitions only (so it forgets the ids of what it read before, one to two hours), the other
leaves; this one re-reads the two partitions it gets back from one window horizon (ten hours)
before their committed offsets, records it processed itself. They are skipped by offset
(``PartitionPlan.fed``), not fed to the windows again: each event processed once, none late,
no alert twice (no repeated or false ``bulk_export``), the per-account alerts replay's."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from tests.daemon.helpers import World, cancel_all, replay_alerts, service, wait_for
from tests.daemon.kafkautil import daemon_config, produce
from tests.daemon.test_assigned_back import (
    _b_leaves_then_the_rest,
    _check_processed_once,
    _owns,
    _settled,
    _ten_hour_world,
)
from watchdog.daemon.config import load_config

pytestmark = pytest.mark.integration

FORGOTTEN = 5 * 3600.0  # past the dedupe window (one to two hours), within the ten-hour windows


def _t(raw: bytes) -> float:
    return datetime.fromisoformat(orjson.loads(raw)["@timestamp"].replace("Z", "+00:00")
                                  ).timestamp()


async def test_a_redelivery_older_than_the_dedupe_window_is_processed_once(
        tansu_broker, world: World, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    world = await _ten_hour_world(bs, world, tmp_path)
    events = sorted(world.events, key=_t)
    first = events[: len(events) * 2 // 5]
    end1 = _t(first[-1])
    middle = [e for e in events[len(first):] if _t(e) <= end1 + FORGOTTEN]
    rest = events[len(first) + len(middle):]
    assert middle
    assert rest
    expected = replay_alerts(events, world.directory, world.subjects, world.policy,
                             tmp_path / "replay")
    assert any(a.startswith("bulk_export:") for a in expected)
    cfg = load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs)))
    a, b = service(cfg, world), service(cfg, world)
    runs: list[asyncio.Task[int]] = []
    try:
        runs.append(asyncio.create_task(a.run()))
        await wait_for(lambda: _owns(a, 4), within=30, what="a owns every partition")
        await produce(bs, "access-logs", first, key="user", event_time=True)
        await wait_for(lambda: _settled(a, len(first)), within=60, what="the first part")
        runs.append(asyncio.create_task(b.run()))
        await wait_for(lambda: _owns(a, 2) and _owns(b, 2), within=40, what="b joined")
        kept = sorted(a.sources[0].assigned)  # type: ignore[attr-defined]
        await produce(bs, "access-logs", middle, event_time=True, partitions=kept)
        await wait_for(lambda: a.pipeline.detector.processed == len(first) + len(middle),
                       within=60, what="five hours more read by a alone")
        await _b_leaves_then_the_rest(a, b, runs, bs, rest, len(events))
    finally:
        cancel_all([a, b], runs)

    # the two partitions given back were re-read from ten hours back, not fed to the windows
    # twice
    await _check_processed_once(a, bs, events, expected)
