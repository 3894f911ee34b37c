"""Alerts published to an MQTT topic (QoS 1 by default: the broker acknowledges each).

Its own connection (client id ``<mqtt.client_id>-alerts``), opened on first use and reopened
after a failure. A broker that goes away fails the send at once (refused, not connected) or
after the client's 10 s (a broker that hangs); the outbox retries what was not published,
forever, so alerts raised meanwhile wait (``pending``, backpressure), and go out once the
broker is back (tests/daemon/test_mqtt_sink_resume.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack, suppress

import aiomqtt

from watchdog.alerts.model import Alert, encode_alert
from watchdog.daemon.config import Mqtt
from watchdog.daemon.config import MqttSink as Settings
from watchdog.daemon.sinks.base import PartialDelivery
from watchdog.daemon.sources.mqtt import mqtt_client


class MqttSink:
    name = "mqtt"

    def __init__(self, conn: Mqtt, s: Settings, timeout: float = 15.0) -> None:
        self.conn = conn
        self.topic = s.topic
        self.qos = s.qos
        self.timeout = timeout
        self._stack: AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None
        self.progress = 0

    async def start(self) -> None:
        pass

    async def _connect(self) -> aiomqtt.Client:
        if self._client is None:
            stack = AsyncExitStack()
            client = await stack.enter_async_context(
                mqtt_client(self.conn, f"{self.conn.client_id}-alerts"))
            self._stack, self._client = stack, client
        return self._client

    async def send(self, alerts: Sequence[Alert]) -> None:
        self.progress = 0  # alerts of this send published so far (the outbox's timeout reads it)
        try:
            client = await self._connect()
            for a in alerts:
                await client.publish(self.topic, encode_alert(a), qos=self.qos)
                self.progress += 1
        except Exception as err:
            await self.close()
            raise PartialDelivery(self.progress, err) from err

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with suppress(aiomqtt.MqttError):
                await stack.aclose()
