"""Each record of a backlog is fetched once: aiokafka starts fetching a new assignment while the
source's rebalance callback still looks up where to read from, and records returned before a
partition was opened were dropped and fetched again after the seek (14k of a 200k backlog in
bench_archive, a tenth of the daemon's decoding). Against the real broker (Tansu)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from tests.daemon.helpers import World, cancel_all, service, wait_for
from tests.daemon.kafkautil import daemon_config, make_topics, produce, produce_state
from watchdog.daemon.config import load_config

pytestmark = pytest.mark.integration


async def test_a_backlog_is_fetched_once(tansu_broker, world: World, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=4)
    await produce_state(bs, world)
    await produce(bs, "access-logs", world.events, key="user", event_time=True)
    svc = service(load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs))), world)
    returned = 0
    getmany = AIOKafkaConsumer.getmany

    async def counting(self: AIOKafkaConsumer, *a: Any, **kw: Any) -> Any:
        nonlocal returned
        data = await getmany(self, *a, **kw)
        if self is svc.sources[0].consumer:  # type: ignore[attr-defined]
            returned += sum(len(recs) for recs in data.values())
        return data

    committed = AIOKafkaConsumer.committed

    async def slow_committed(self: AIOKafkaConsumer, *a: Any, **kw: Any) -> Any:
        # a broker far away: the fetches of the new assignment come back meanwhile (on this
        # machine the race went either way, here it always goes against the source)
        await asyncio.sleep(0.3)
        return await committed(self, *a, **kw)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", counting)
    monkeypatch.setattr(AIOKafkaConsumer, "committed", slow_committed)
    runs = [asyncio.create_task(svc.run())]
    try:
        await wait_for(lambda: svc.pipeline.detector.processed == len(world.events),
                       within=60, what="every event processed")
        svc.request_stop()
        assert await asyncio.wait_for(runs[0], 20) == 0
    finally:
        cancel_all([svc], runs)
    assert returned == len(world.events)
