"""The MQTT alert sink through a broker outage, against the real mosquitto: the broker stops
mid-run, alerts raised meanwhile wait (the outbox retries them, never drops them: sinks.base),
the broker comes back on the same port, delivery resumes with every alert, and the daemon
runs on throughout.

The daemon reads the world's events from its in-memory source, half before the outage and
half during it, and sends its alerts to the MQTT sink and to an in-memory sink (what it
raised). A subscriber in the test holds a persistent session (clean_session false, QoS 1) on
a broker that keeps sessions across its restart (persistence on), so an alert published
before the subscriber is back is queued for it, not lost by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiomqtt
import orjson
import pytest

from tests.daemon.helpers import World, wait_for
from tests.services.exposition import metric_value
from tests.services.mosquitto import Mosquitto
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.deadletter import MemoryDeadLetters
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sinks.memory import MemorySink
from watchdog.daemon.sinks.mqtt import MqttSink
from watchdog.daemon.sources.memory import MemorySource

pytestmark = pytest.mark.integration
ALERTS = "watchdog/alerts-resume"


class Subscriber:
    """The alerts topic's reader: reconnects (same persistent session) until stopped."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.ids: list[str] = []
        self.connected = False
        self.connects = 0

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.host, self.port, identifier="alerts-reader",
                                          clean_session=False, keepalive=5) as client:
                    await client.subscribe(ALERTS, qos=1)
                    self.connected = True
                    self.connects += 1
                    async for msg in client.messages:
                        self.ids.append(orjson.loads(bytes(msg.payload))["alert_id"])  # type: ignore[arg-type]
            except aiomqtt.MqttError:
                self.connected = False
                await asyncio.sleep(0.05)  # a reconnect's pause: the broker is away


def halves(world: World) -> tuple[list[bytes], list[bytes]]:
    """The events split where half of replay's alerts are completed (the violations are
    late in the file)."""
    at = {orjson.loads(raw)["event"]["id"]: i for i, raw in enumerate(world.events)}
    ends = sorted(at[e] for e in world.expected.values())
    cut = ends[len(ends) // 2]
    return world.events[:cut], world.events[cut:]


async def test_delivery_resumes_after_the_broker_comes_back(world: World,
                                                            tmp_path: Path) -> None:
    first, second = halves(world)
    store = tmp_path / "mosquitto"
    store.mkdir()
    with Mosquitto(extra_config=f"persistence true\npersistence_location {store}/") as mq:
        cfg_path = tmp_path / "watchdog.yaml"
        cfg_path.write_text(orjson.dumps({
            "mqtt": {"host": mq.host, "port": mq.port, "client_id": "watchdog-resume"},
            "sinks": {"mqtt": {"topic": ALERTS}},
            "delivery": {"retry_initial_seconds": 0.02, "retry_max_seconds": 0.2},
        }).decode())
        cfg = load_config(str(cfg_path), env={})
        assert cfg.mqtt is not None
        assert cfg.sinks.mqtt is not None
        raised = MemorySink()
        sources: list[MemorySource] = []

        def source(p: Pipeline) -> MemorySource:
            sources.append(MemorySource(p, 1))
            return sources[-1]

        svc = Service(cfg, world.engine(), sinks=[MqttSink(cfg.mqtt, cfg.sinks.mqtt), raised],
                      sources=[source], dead_letters=MemoryDeadLetters(), kafka=False,
                      listen=False)
        reader = Subscriber(mq.host, mq.port)
        reading = asyncio.create_task(reader.run())
        run = asyncio.create_task(svc.run())
        errors = svc.metrics.sink_errors.labels("mqtt")

        def idle() -> bool:
            return svc.pipeline.partitions[0].idle
        try:
            await wait_for(lambda: reader.connected and bool(sources), what="subscribed")
            sources[0].feed(0, list(first))
            # read and idle: the reorder buffer flushed, its alerts raised
            await wait_for(lambda: sources[0].consumed == len(first) and idle()
                           and svc.delivery.pending == 0, what="the first half delivered")
            before = raised.ids
            assert before, "the first half raises alerts"
            await wait_for(lambda: set(reader.ids) == before, what="the first half received")

            await asyncio.to_thread(mq.stop)  # the broker goes away mid-run
            sources[0].feed(0, list(second))
            await wait_for(lambda: sources[0].consumed == len(world.events) and idle(),
                           what="the second half read, the buffer flushed")
            await wait_for(lambda: metric_value(errors) >= 2, what="the sink failing, retried")
            assert raised.ids > before, "the second half raises alerts during the outage"
            assert svc.delivery.pending > 0, "they wait for the MQTT sink"
            assert not run.done(), "the daemon runs on"

            await asyncio.to_thread(mq.start)  # back on the same port, its sessions kept
            await wait_for(lambda: svc.delivery.pending == 0, within=30,
                           what="delivery resumed: every alert accepted")
            await wait_for(lambda: set(reader.ids) == raised.ids, within=15,
                           what="every alert received, those of the outage too")
            assert reader.connects >= 2
            assert not run.done(), "the daemon runs on"
        finally:
            svc.request_stop()
            try:
                assert await asyncio.wait_for(run, 20) == 0
            finally:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
    assert metric_value(svc.metrics.sink_sent.labels("mqtt")) == len(raised.alerts)
    assert len(raised.alerts) == len(raised.ids)
