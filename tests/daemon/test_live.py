"""The live daemon against a real Kafka-protocol broker (Tansu) and a real mosquitto.

One daemon run (one group join, to keep the suite lean) proves several things at once:
events produced to Kafka and published over MQTT give exactly the alerts ``watchdog replay``
gives for the same events (same alert ids, nothing more); invalid input lands in the DLQ
untouched with its reason in headers and is counted by reason; alerts reach both the Kafka
``alerts`` topic and the MQTT sink; offsets end up committed to the end of every partition.
"""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

import aiomqtt
import httpx
import orjson
import pytest

from tests.daemon.helpers import KEY, World, cancel_all, stop_all, wait_for
from tests.daemon.kafkautil import (
    committed,
    daemon_config,
    make_topics,
    produce,
    produce_state,
    read_all,
)
from tests.services.procs import free_port
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.engine.engine import Engine
from watchdog.policy import load_policy
from watchdog.rules import default_rules

pytestmark = pytest.mark.integration

BAD = [
    (b"{not json", "not_json"),
    (b'{"@timestamp":"2026-11-01T00:00:00Z","event":{"action":"read"}}', "missing_field"),
    (b'{"@timestamp":"1900-01-01T00:00:00Z","event":{"id":"x","action":"read"},'
     b'"user":{"id":"e1"}}', "bad_timestamp"),
]


def _via_mqtt(raw: bytes) -> bool:
    return zlib.crc32(World.user_of(raw).encode()) % 5 == 0


async def _publish(host: str, port: int, events: list[bytes]) -> None:
    """A live MQTT log shipper (QoS 1), with one invalid payload among the events."""
    async with aiomqtt.Client(host, port, identifier="test-shipper") as mqtt:
        for i, raw in enumerate(events):
            if i == 100:
                await mqtt.publish("logs/crm/access", b"\xff\xfe", qos=1)
            await mqtt.publish("logs/crm/access", raw, qos=1)


async def test_kafka_and_mqtt_give_the_alerts_replay_gives(
        tansu_broker, mosquitto_broker, world: World, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    mq = mosquitto_broker
    await make_topics(bs, partitions=4)
    await produce_state(bs, world)
    # most accounts' events wait in Kafka as a backlog (with invalid ones among them); the
    # others arrive live over MQTT once the daemon runs: the watermark must line them up
    kafka = [e for e in world.events if not _via_mqtt(e)]
    mqtt = [e for e in world.events if _via_mqtt(e)]
    assert kafka
    assert mqtt
    await produce(bs, "access-logs", [*kafka[:500], *(b for b, _ in BAD), *kafka[500:]],
                  key="user", event_time=True)
    listen = f"127.0.0.1:{free_port()}"
    cfg = load_config(str(daemon_config(
        tmp_path / "watchdog.yaml", bs, listen=listen,
        mqtt={"host": mq.host, "port": mq.port, "subscribe": ["logs/+/access"],
              "idle_after_seconds": 30.0, "client_id": "watchdog-test"},
        sinks={"kafka": {}, "mqtt": {"topic": "watchdog/alerts"}})))
    engine = Engine(load_policy(str(world.policy)), Pseudonymizer(KEY.encode()), default_rules())
    svc = Service(cfg, engine)
    mqtt_alerts: list[bytes] = []

    async def watch_mqtt_sink(ready: asyncio.Event) -> None:
        async with aiomqtt.Client(mq.host, mq.port, identifier="test-alerts") as c:
            await c.subscribe("watchdog/alerts", qos=1)
            ready.set()
            async for msg in c.messages:
                mqtt_alerts.append(bytes(msg.payload))  # type: ignore[arg-type]

    sink_ready = asyncio.Event()
    sink_task = asyncio.create_task(watch_mqtt_sink(sink_ready))
    run = asyncio.create_task(svc.run())
    try:
        async with httpx.AsyncClient(base_url=f"http://{listen}") as http:
            await wait_for(lambda: svc.started.is_set() and svc.sources[1].ready
                           and bool(svc.sources[0].assigned), within=30,
                           what="daemon consuming (group joined, MQTT subscribed)")
            await sink_ready.wait()
            assert (await http.get("/readyz")).status_code == 200
            await _publish(mq.host, mq.port, mqtt)
            p = svc.pipeline
            await wait_for(lambda: p.detector.processed + len(p.order) == len(world.events),
                           within=60, what="every event consumed")
            metrics = (await http.get("/metrics")).text
        await stop_all([svc], [run], 15)  # flushes the detector and delivers before exiting
        await wait_for(lambda: len(mqtt_alerts) >= len(world.expected), within=10,
                       what="the alerts from the MQTT sink")
    finally:
        cancel_all([svc], [run])
        sink_task.cancel()

    assert svc.pipeline.order.stats.late == 0
    # the same alerts as replay: no missing, no extra, no duplicate
    on_topic = [r.key.decode() for r in await read_all(bs, "alerts")]
    assert set(on_topic) == set(world.expected)
    assert len(on_topic) == len(set(on_topic))
    assert {orjson.loads(m)["alert_id"] for m in mqtt_alerts} == set(world.expected)

    # dead letters: original bytes untouched, reason and origin in headers
    dlq = await read_all(bs, "access-logs.dlq")
    by_value = {r.value: dict(r.headers) for r in dlq}
    for raw, reason in BAD:
        h = by_value[raw]
        assert h["reason"].decode() == reason
        assert h["source_topic"] == b"access-logs"
        assert int(h["source_offset"]) >= 0
        assert h["detail"]
    assert by_value[b"\xff\xfe"]["source_topic"] == b"logs/crm/access"
    assert by_value[b"\xff\xfe"]["reason"] == b"not_json"
    assert 'watchdog_events_invalid_total{reason="not_json"} 2.0' in metrics
    assert 'watchdog_events_invalid_total{reason="missing_field"} 1.0' in metrics
    for name in ("watchdog_events_total{", "watchdog_alerts_total{", "watchdog_consumer_lag{",
                 "watchdog_event_to_alert_seconds_bucket", "watchdog_ready 1.0"):
        assert name in metrics
    # the lag is per consumer group; the state topics, read in full by every instance, have none
    assert 'watchdog_consumer_lag{group="watchdog",partition="0",topic="access-logs"}' in metrics
    assert 'watchdog_consumer_lag{group="",partition="0",topic="directory"}' in metrics
    users = {World.user_of(e) for e in world.events}
    for line in metrics.splitlines():  # no account id in any label
        if line.startswith("watchdog_"):
            labels = line.split("{", 1)[1].split("}", 1)[0] if "{" in line else ""
            assert not any(f'"{u}"' in labels for u in users), line

    # at-least-once, and nothing left behind: committed to the end of every partition
    ends = {p: 0 for p in range(4)}
    for r in await read_all(bs, "access-logs"):
        ends[r.partition] = max(ends[r.partition], r.offset + 1)
    assert await committed(bs, "watchdog", "access-logs", 4) == ends
