"""MQTT at-least-once through a crash, against the real mosquitto (and Tansu for the state).

A message is acknowledged only once its event left the reorder buffer and every alert it
completed was accepted by every sink; the session is persistent, so a ``kill -9`` of the
daemon loses nothing: twelve failed logins, kill -9 before the brute_force alert went out,
restart: the broker redelivers them and the alert arrives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import orjson
import pytest

from tests.builders import event_doc
from tests.daemon.helpers import World, wait_for
from tests.daemon.kafkautil import daemon_config, make_topics, produce_state
from tests.daemon.test_restart import scrape
from tests.services.exposition import total
from tests.services.procs import ManagedProcess, free_port, wait_for_http
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.deadletter import MemoryDeadLetters
from watchdog.daemon.logging import get_logger
from watchdog.daemon.sinks.memory import MemorySink
from watchdog.daemon.sources.mqtt import MqttSource

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TOPIC = "logs/idp/access"


def without_register(world: World) -> World:
    """The world without its subject register: these events are dated now, long after the
    simulated erasure requests, whose obligations (erasure_overdue) would fall due too."""
    return dataclasses.replace(world, subjects=[])


def failed_logins(world: World, n: int = 12) -> list[bytes]:
    """``n`` failed logins of one account, a second apart, ending now (brute force: 10)."""
    user = orjson.loads(world.directory[0])["user_id"]
    start = datetime.now(UTC) - timedelta(seconds=n)
    return [orjson.dumps(event_doc(action="login", outcome="failure", data=False,
                                   dataset="idp.auth", user=user,
                                   when=start + timedelta(seconds=i))) for i in range(n)]


async def publish(host: str, port: int, docs: list[bytes]) -> None:
    async with aiomqtt.Client(host, port, identifier="test-shipper") as c:
        for raw in docs:
            await c.publish(TOPIC, raw, qos=1)


async def test_acknowledged_only_once_every_sink_accepted(
        mosquitto_broker, world: World, tmp_path: Path) -> None:
    mq = mosquitto_broker
    world = without_register(world)
    cfg_path = tmp_path / "watchdog.yaml"
    cfg_path.write_text(orjson.dumps({
        "kafka": {"consume": False},
        "mqtt": {"host": mq.host, "port": mq.port, "subscribe": [TOPIC],
                 "client_id": "watchdog-ack", "idle_after_seconds": 0.5},
        "delivery": {"retry_initial_seconds": 0.02, "retry_max_seconds": 0.1},
    }).decode())
    cfg = load_config(str(cfg_path), env={})
    sink = MemorySink()
    sink.down = True
    assert cfg.mqtt is not None
    m = cfg.mqtt
    svc = Service(cfg, world.engine(), sinks=[sink], dead_letters=MemoryDeadLetters(),
                  sources=[lambda p: MqttSource(m, p, get_logger("mqtt"))], kafka=False,
                  listen=False)
    src = svc.sources[0]
    assert isinstance(src, MqttSource)
    run = asyncio.create_task(svc.run())
    try:
        await wait_for(lambda: src.ready, within=10, what="subscribed")
        await publish(mq.host, mq.port, [*failed_logins(world), b"not json"])
        p = svc.pipeline
        # released (the stream went idle), the alert raised, the sink down: nothing acked
        await wait_for(lambda: p.detector.processed == 12 and svc.delivery.pending >= 1
                       and sink.attempts >= 2, within=10, what="alert raised, sink failing")
        assert src.received == 13
        assert src.unacked == 13
        assert src.acked == 0
        sink.down = False
        await wait_for(lambda: src.unacked == 0, within=10, what="every message acknowledged")
        # (the world's state raises other alerts at today's event times too)
        assert [a.rule for a in sink.alerts].count("brute_force") == 1
        assert src.acked == 13
    finally:
        svc.request_stop()
        assert await asyncio.wait_for(run, 15) == 0


def daemon(cfg: Path) -> ManagedProcess:
    return ManagedProcess("watchdog", [sys.executable, "-m", "watchdog", "run", "--config",
                                       str(cfg)], cwd=ROOT, stop_timeout=12.0)


def alerts_in(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [orjson.loads(line)["rule"] for line in path.read_bytes().splitlines() if line]


async def test_kill_9_loses_no_alert(tansu_broker, mosquitto_broker, world: World,
                                     tmp_path: Path) -> None:
    bs, mq = tansu_broker.bootstrap_servers, mosquitto_broker
    world = without_register(world)
    await make_topics(bs, partitions=1)
    await produce_state(bs, world)
    out = tmp_path / "alerts.jsonl"
    port = free_port()

    def config(idle_after: float) -> Path:
        return daemon_config(
            tmp_path / "watchdog.yaml", bs, listen=f"127.0.0.1:{port}", policy=str(world.policy),
            kafka={"consume": False},
            mqtt={"host": mq.host, "port": mq.port, "subscribe": [TOPIC],
                  "client_id": "watchdog-kill9", "idle_after_seconds": idle_after,
                  "checkpoint": {"path": str(tmp_path / "mqtt.checkpoint")}},
            sinks={"jsonl": {"path": str(out)}})

    url = f"http://127.0.0.1:{port}"
    logins = failed_logins(world)
    # first run: the events arrive and wait in the reorder buffer (the stream is not idle
    # for 30 s): kill -9 two seconds after the last one was consumed
    first = daemon(config(30.0))
    with first:
        wait_for_http(f"{url}/readyz", timeout=30)
        await publish(mq.host, mq.port, logins)
        await wait_for(lambda: total(scrape(f"{url}/metrics"), "watchdog_events_total") == 12,
                       within=10, interval=0.1, what="the twelve events consumed")
        await asyncio.sleep(2.0)  # the scenario of the issue: a crash two seconds later
        assert first.stop(kill=True) == -signal.SIGKILL
    assert "brute_force" not in alerts_in(out)  # still in the reorder buffer at the crash
    # restart: the broker redelivers every message never acknowledged
    second = daemon(config(1.0))
    with second:
        await wait_for(lambda: "brute_force" in alerts_in(out), within=30, interval=0.1,
                       what="the brute_force alert after the restart")
        assert total(scrape(f"{url}/metrics"), "watchdog_events_total") == 12
    assert alerts_in(out).count("brute_force") == 1
