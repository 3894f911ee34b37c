"""Live equals replay over MQTT: ``watchdog run`` subscribed to the real mosquitto.

The same property as tests/fuzz/test_fuzz_live_broker.py, for one MQTT connection (one stream
in the reorder buffer): an organisation's events published in chunks (times from 1970 to 2099,
strays dated far ahead, disorder within ``lateness`` or any, messages published twice, an idle
pause or none after a chunk) must raise the alerts ``watchdog replay`` raises over them
whenever the daemon processed no event late. Kafka (Tansu) carries the directory and the
subject register, as it does in production. And a kill -9 after a chunk, then a restart: the
messages acknowledged before it are gone from the broker, so the windows they built come back
from the checkpoint of the detector's state (daemon/checkpoint.py), and the broker redelivers
the rest; the alerts must still be replay's (some may be sent twice, none lost), strays held
ahead of the present included (they are in the checkpoint).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import event, given, note

from tests.fuzz._daemon_process import BARRIER, Daemon, config, produce_state
from tests.fuzz._live_broker import (
    SENTINEL,
    Case,
    broker_cases,
    comparable,
    may_be_late,
    process_settings,
    replayed,
    write_policy,
)
from tests.services.fixtures import create_topics, unique_name
from tests.services.mosquitto import Mosquitto
from tests.services.procs import free_port
from tests.services.tansu import TansuBroker

pytestmark = pytest.mark.integration


async def run_case(bs: str, mq: Mosquitto, tmp: Path, case: Case) -> None:
    policy = write_policy(case, tmp / "policy.yaml")
    expected = replayed(case, policy, tmp)
    port = free_port()
    topic = f"logs/{unique_name('idp')}/access"
    cfg, topics = config(tmp, bs, case, port, policy,
                         mqtt={"host": mq.host, "port": mq.port, "subscribe": [topic]})
    await create_topics(bs, [topics[t] for t in ("directory", "subjects", "alerts", "dlq")])
    producer = AIOKafkaProducer(bootstrap_servers=bs, acks="all", linger_ms=5)
    await producer.start()
    daemon = Daemon(cfg, port)
    try:
        await produce_state(producer, case, topics)
        await daemon.start(None)
        late = 0.0
        since = 0  # sentinels published since the daemon (re)started: each one it must read
        async with aiomqtt.Client(mq.host, mq.port, identifier=unique_name("shipper")) as c:
            for k, chunk in enumerate(case.chunks):
                for i, _ in chunk:
                    await c.publish(topic, case.docs[i], qos=1)
                await c.publish(topic, SENTINEL, qos=1)
                since += 1
                last = k == len(case.chunks) - 1
                if case.pauses[k] or last:
                    await daemon.read_to(since, f"chunk {k} read to its end")
                if case.pauses[k] and not last:
                    await daemon.flushed(f"the idle flush after chunk {k}")
                if case.kill_after == k and not last:
                    late += await daemon.total("watchdog_events_late_total")
                    daemon.proc.stop(kill=True)
                    note(f"kill -9 after chunk {k}")
                    await daemon.start(None)
                    # those not acknowledged before the kill come again, sentinels among them
                    # (acks wait for a checkpoint): a barrier sent now arrives after them, so
                    # the sentinels read once it is in are where the new count starts
                    await c.publish(topic, BARRIER, qos=1)
                    await daemon.read_barrier("the redelivery after the restart")
                    since = int(await daemon.total("watchdog_events_invalid_total"))
        late += await daemon.total("watchdog_events_late_total")
        duplicates = await daemon.total("watchdog_events_duplicate_total")
        assert daemon.proc.stop() == 0, daemon.proc.log_tail()  # SIGTERM: flush, deliver
    finally:
        await producer.stop()
        await daemon.close()
    out = tmp / "alerts.jsonl"
    lines = [ln for ln in out.read_bytes().splitlines() if ln] if out.exists() else []
    live = comparable(lines)
    note(f"order={case.order} lateness={case.lateness} future={case.future} "
         f"chunks={len(case.chunks)} pauses={case.pauses} kill_after={case.kill_after} "
         f"strays={len(case.strays)} "
         f"copies={case.copies} late={late} duplicates={duplicates} "
         f"expected={len(expected)} live={len(live)}")
    event(f"order={case.order}")
    event(f"late={'0' if not late else '>0'}")
    event(f"kill={case.kill_after is not None}")
    event(f"strays={len(case.strays)} chunks={len(case.chunks)} pauses={sum(case.pauses)}")
    if case.kill_after is None:
        assert len(lines) == len(live), "an alert sent twice without a crash"
        assert late <= may_be_late(case), "an event made late that arrived in order"
        if case.order != "any":
            assert late == 0, "an event was made late by the arrival order, a pause or a stray"
    if not late:
        assert live == expected, (sorted(expected - live), sorted(live - expected))


@pytest.fixture(scope="module")
def brokers(tansu_broker_module: TansuBroker,
            mosquitto_broker_module: Mosquitto) -> tuple[str, Mosquitto]:
    return tansu_broker_module.bootstrap_servers, mosquitto_broker_module


@process_settings(5)
@given(case=broker_cases(kill=True, partitions=1))
def test_the_daemon_over_mqtt_gives_the_alerts_replay_gives(
        brokers: tuple[str, Mosquitto], tmp_path_factory: pytest.TempPathFactory,
        case: Case) -> None:
    bs, mq = brokers
    asyncio.run(run_case(bs, mq, tmp_path_factory.mktemp("mqtt"), case))
