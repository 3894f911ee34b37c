"""What an MQTT source says when it is not alone under its identity, against the real
mosquitto: a second connection with its client id takes its session over (the broker drops it:
two instances with one configuration; mosquitto 2.0 gives no reason, the connections just keep
falling right after they subscribe), and a shared subscription splits an account's events
between instances. Both are said in a line an operator can act on."""

from __future__ import annotations

import asyncio

import pytest

from tests.builders import engine
from tests.daemon.helpers import CollectAlerts, RecordingLog, wait_for
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.settings import Mqtt
from watchdog.daemon.sources.mqtt import MqttSource

pytestmark = pytest.mark.integration


def _source(m: Mqtt) -> tuple[MqttSource, RecordingLog]:
    log = RecordingLog()
    p = Pipeline(engine(), CollectAlerts(), None, Metrics(), log)  # type: ignore[arg-type]
    return MqttSource(m, p, log), log


async def test_a_second_connection_with_the_client_id_is_named(mosquitto_broker) -> None:
    m = Mqtt(host=mosquitto_broker.host, port=mosquitto_broker.port, client_id="wd-twin",
             subscribe=["logs/+/access"], checkpoint=None)
    (a, a_log), (b, b_log) = _source(m), _source(m)
    runs: list[asyncio.Task[None]] = []
    try:
        for src in (a, b):
            await src.start()
        runs.append(asyncio.create_task(a.run()))
        await wait_for(lambda: a.connected, within=10, what="the first connection")
        runs.append(asyncio.create_task(b.run()))
        await wait_for(lambda: "mqtt_client_id_in_use" in a_log.events() + b_log.events(),
                       within=60, what="the takeover named")
    finally:
        for src in (a, b):
            src.stop()
        await asyncio.gather(*runs, return_exceptions=True)
        for src in (a, b):
            await src.finish()  # (a stop leaves the connection open for the last acks)
    line = next(kw for e, kw in a_log.lines + b_log.lines if e == "mqtt_client_id_in_use")
    assert line["client_id"] == "wd-twin"
    assert "mqtt_shared_subscription" not in a_log.events()


async def test_a_shared_subscription_is_warned_about_once(mosquitto_broker) -> None:
    m = Mqtt(host=mosquitto_broker.host, port=mosquitto_broker.port, client_id="wd-shared",
             subscribe=["$share/wd/logs/+/access", "logs/hr/access"], checkpoint=None)
    src, log = _source(m)
    await src.start()
    run = asyncio.create_task(src.run())
    try:
        await wait_for(lambda: src.connected, within=10, what="connected")
    finally:
        src.stop()
        await asyncio.gather(run, return_exceptions=True)
        await src.finish()
    warned = [kw for e, kw in log.lines if e == "mqtt_shared_subscription"]
    assert len(warned) == 1
    assert warned[0]["topics"] == ["$share/wd/logs/+/access"]
    assert "mqtt_client_id_in_use" not in log.events()
