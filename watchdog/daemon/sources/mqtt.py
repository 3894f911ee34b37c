"""Access events over MQTT (aiomqtt): the configured topic filters, QoS 1, same decode path.

One MQTT connection is one stream in the reorder buffer (partition key
:data:`~watchdog.daemon.sources.base.MQTT_STREAM`); it stops holding the watermark after
``idle_after_seconds`` without a message. A persistent session (``clean_session: false`` and
a fixed client id) makes the broker keep QoS 1 messages while the daemon is away. MQTT has no
offsets to commit: a message is acknowledged when it is received (aiomqtt has no manual
acknowledgement), so delivery is at-least-once up to the daemon, not through a crash of it.
While sinks are behind, received messages wait in the client's queue (memory, never dropped).
Several instances should subscribe with shared subscriptions (``$share/watchdog/...``), or
every instance gets every message. Reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from typing import Any

import aiomqtt

from watchdog.daemon.config import TLS, Mqtt
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.base import MQTT_STREAM, Raw

BATCH = 1000


def mqtt_client(m: Mqtt, identifier: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        m.host, m.port, identifier=identifier, username=m.username, password=m.password,
        clean_session=m.clean_session, keepalive=m.keepalive, tls_context=tls_context(m.tls),
        timeout=10.0)


def tls_context(tls: TLS | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    ctx = ssl.create_default_context(cafile=tls.cafile)
    if tls.certfile:
        ctx.load_cert_chain(tls.certfile, tls.keyfile, tls.password)
    ctx.check_hostname = tls.check_hostname
    return ctx


def _payload(p: Any) -> bytes | None:
    if isinstance(p, bytes):
        return p
    if isinstance(p, bytearray | memoryview):
        return bytes(p)
    if isinstance(p, str):
        return p.encode()
    return None if p is None else str(p).encode()


class MqttSource:
    name = "mqtt"

    def __init__(self, m: Mqtt, pipeline: Pipeline, log: Any, *, stall: float = 30.0,
                 pkey: int = MQTT_STREAM,
                 congested: Callable[[], bool] = lambda: False) -> None:
        self.m = m
        self.congested = congested
        self.pipeline = pipeline
        self.log = log.bind(broker=f"{m.host}:{m.port}")
        self.pkey = pkey
        self.stall = stall
        self.connected = False
        self.received = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last = time.monotonic()
        self._beat = time.monotonic()

    async def start(self) -> None:
        self.pipeline.add_stream(self.pkey)

    def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()

    async def finish(self) -> None:
        pass  # nothing to commit: QoS 1 messages were acknowledged on receipt

    def alive(self, now: float) -> bool:
        # the receive loop blocks while nothing arrives; the watchdog below ticks instead
        return self._stopping or now - self._beat < self.stall

    @property
    def ready(self) -> bool:
        return self.connected

    async def run(self) -> None:
        self._task = asyncio.current_task()
        delay = 0.5
        try:
            while not self._stopping:
                try:
                    await self._session()
                except aiomqtt.MqttError as err:
                    if self.connected:
                        self.log.warning("mqtt_disconnected", error=str(err)[:200])
                    self.connected = False
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                else:
                    delay = 0.5
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            self.connected = False

    async def _session(self) -> None:
        async with mqtt_client(self.m, self.m.client_id) as client:
            for topic_filter in self.m.subscribe:
                await client.subscribe(topic_filter, qos=self.m.qos)
            self.connected = True
            self._last = time.monotonic()  # quiet is measured from the subscription on
            self.log.info("mqtt_subscribed", topics=self.m.subscribe, qos=self.m.qos)
            messages = client.messages
            it = aiter(messages)
            while True:
                msg = await anext(it)
                while self.congested():  # sinks behind: let messages wait in the queue
                    self._beat = time.monotonic()
                    await asyncio.sleep(0.1)
                batch = [msg]
                while len(batch) < BATCH and len(messages):
                    batch.append(await anext(it))
                self._ingest(batch)

    def _ingest(self, batch: list[aiomqtt.Message]) -> None:
        self._last = self._beat = time.monotonic()
        self.received += len(batch)
        # one topic per call, so dead letters name the topic the message came on
        start = 0
        for i in range(1, len(batch) + 1):
            if i == len(batch) or batch[i].topic.value != batch[start].topic.value:
                recs = [Raw(_payload(m.payload)) for m in batch[start:i]]
                self.pipeline.ingest(self.pkey, recs, batch[start].topic.value)
                start = i

    def tick(self, now: float, idle_after: float) -> None:
        """From the service's housekeeping: mark the stream idle when quiet."""
        self._beat = now
        if now - self._last >= idle_after and self.pkey not in self.pipeline.idle:
            self.pipeline.mark_idle(self.pkey)
