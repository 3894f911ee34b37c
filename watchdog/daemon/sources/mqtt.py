"""Access events over MQTT: the configured topic filters, QoS 1, same decode path.

At-least-once through a crash: a message is acknowledged (PUBACK) only once its event has
left the reorder buffer and every alert it completed was accepted by every sink (a rejected
message: once its dead letter was). The pipeline's :class:`~watchdog.daemon.offsets.
PartitionBook` says so, as for a Kafka partition: each message gets the next sequence number
of this stream as its "offset", and acknowledgements follow the book's safe offset, in the
order the messages came (MQTT wants them in that order). The session is persistent (MQTT v5,
``session_expiry_seconds``, ``clean_session: false``), so after a ``kill -9`` the broker
redelivers every message not acknowledged, and keeps what arrives while the daemon is away.
Redeliveries of events already processed are duplicates to the pipeline (same ``event.id``)
and alerts already sent are suppressed by their id within this process; across a restart an
alert may be sent twice, never lost.

With checkpoints (``mqtt.checkpoint``, the default; :mod:`watchdog.daemon.checkpoint`) a
message is acknowledged only once, besides, a checkpoint of the detector's state that holds
its event is durable: acknowledgements go out in batches, one per checkpoint, and windows
built from acknowledged messages survive a crash (restored at the start; the redelivered
messages the checkpoint holds are duplicates).

One connection is one stream in the reorder buffer (partition key
:data:`~watchdog.daemon.sources.base.MQTT_STREAM`); it stops holding the watermark after
``idle_after_seconds`` without a message. While sinks are behind, received messages wait
unread (and unacknowledged). Reconnects with backoff.

One instance per stream: a shared subscription (``$share/<name>/...``) hands each message to one
of its subscribers, so one account's events are split between instances at random and the
windowed rules and the model each see a part of it (Kafka keeps an account on one partition).
It works, and is warned about once at the start (``mqtt_shared_subscription``); to scale out,
bridge the MQTT topics into ``access-logs`` keyed by ``user.id``. Each instance needs its own
``mqtt.client_id``: the broker drops a connection when another connects with its id, and the
two then take the session from each other at every reconnect. Some brokers say so (MQTT 5
"Session taken over"); mosquitto 2.0 closes the connection without a reason. Either, or
:data:`SHORT_LIVED` connections in a row lost within :data:`SHORT_SECONDS` of their
subscription, is logged as the error ``mqtt_client_id_in_use``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

from watchdog.daemon.checkpoint import Checkpoints
from watchdog.daemon.config import TLS, Mqtt
from watchdog.daemon.offsets import PartitionBook
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.base import MQTT_STREAM, Raw
from watchdog.daemon.sources.mqtt_session import MqttSessionError, Subscriber

BATCH = 1000
CLOSE_SECONDS = 2.0


def mqtt_client(m: Mqtt, identifier: str) -> aiomqtt.Client:
    """A publishing client (the MQTT sink): acknowledgements of what it receives don't matter."""
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


# MQTT 5 reason 0x8E: another connection with this client id took the session over
TAKEN_OVER = "Session taken over"
# connections lost this soon after their subscription, this many in a row: taken over, likely
SHORT_SECONDS, SHORT_LIVED = 30.0, 2


class MqttSource:
    name = "mqtt"
    rereads = False  # an acknowledged QoS 1 message is not delivered again

    def __init__(self, m: Mqtt, pipeline: Pipeline, log: Any, *, stall: float = 30.0,
                 pkey: int = MQTT_STREAM,
                 congested: Callable[[], bool] = lambda: False,
                 checkpoints: Checkpoints | None = None) -> None:
        self.m = m
        self.checkpoints = checkpoints
        # offsets below which the last two checkpoints made messages safe to acknowledge
        self._durable = self._durable_before = 0
        self._received_at_checkpoint = 0
        self.congested = congested
        self.pipeline = pipeline
        self.log = log.bind(broker=f"{m.host}:{m.port}")
        self.pkey = pkey
        self.stall = stall
        self.received = 0
        self.acked = 0
        self._seq = 0  # the next message's number in this stream (its "offset")
        self._book: PartitionBook | None = None
        # (number, connection it came on, its mid, qos) of messages not acknowledged yet, in
        # order (not the messages: up to 65535 of them may wait)
        self._unacked: deque[tuple[int, Subscriber, int, int]] = deque()
        self._sub: Subscriber | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last = time.monotonic()
        self._beat = time.monotonic()
        self._short = 0  # connections in a row lost soon after their subscription
        self._subscribed_at: float | None = None

    async def start(self) -> None:
        self._book = self.pipeline.track_stream(self.pkey)
        if self.checkpoints is not None:
            self._book.log = []  # the ids of the events released, for the checkpoint

    def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()

    async def finish(self) -> None:
        """After the flush and the drain: acknowledge what is handled, then disconnect (what
        is not stays with the broker for the next start)."""
        self.checkpoint(time.monotonic(), force=True)
        self.acknowledge()
        await self._close()

    def alive(self, now: float) -> bool:
        # the receive loop blocks while nothing arrives; the housekeeping tick beats instead
        return self._stopping or now - self._beat < self.stall

    @property
    def connected(self) -> bool:
        return self._sub is not None and not self._sub.lost

    @property
    def ready(self) -> bool:
        return self.connected

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    async def run(self) -> None:
        self._task = asyncio.current_task()
        shared = [f for f in self.m.subscribe if f.startswith("$share/")]
        if shared:
            self.log.warning("mqtt_shared_subscription", topics=shared,
                             consequence="each message goes to one of the instances sharing "
                                         "it: an account's events are split between them, and "
                                         "windowed rules and the model see a part of each",
                             remedy="one instance per stream; to scale out, bridge the topics "
                                    "into access-logs keyed by user.id")
        delay = 0.5
        try:
            while not self._stopping:
                try:
                    await self._session()
                except MqttSessionError as err:
                    at, self._subscribed_at = self._subscribed_at, None
                    if at is not None:  # (a connection that never subscribed: no verdict)
                        lasted = time.monotonic() - at
                        self._short = self._short + 1 if lasted < SHORT_SECONDS else 0
                        if lasted >= SHORT_SECONDS:
                            delay = 0.5  # a connection that held: the backoff starts over
                    if TAKEN_OVER in str(err) or self._short == SHORT_LIVED:
                        self.log.error("mqtt_client_id_in_use", client_id=self.m.client_id,
                                       detail="the broker drops this connection for another "
                                              "with the same client id (or it keeps failing "
                                              "right after subscribing): give every instance "
                                              "its own mqtt.client_id")
                    self.log.warning("mqtt_disconnected", error=str(err)[:200],
                                     unacknowledged=len(self._unacked),
                                     retry_in=round(delay, 1))
                    await self._close()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                else:
                    delay = 0.5
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        # on a stop the connection stays open until finish() has acknowledged what is handled

    async def _close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                async with asyncio.timeout(CLOSE_SECONDS):
                    await sub.__aexit__(None, None, None)
            except TimeoutError:
                pass

    async def _session(self) -> None:
        sub = Subscriber(self.m, tls_context(self.m.tls))
        await sub.__aenter__()
        self._sub = sub
        await sub.subscribe(self.m.subscribe, self.m.qos)
        self._last = self._subscribed_at = time.monotonic()  # quiet: from the subscription
        self.log.info("mqtt_subscribed", topics=self.m.subscribe, qos=self.m.qos,
                      session_present=sub.session_present)
        while True:
            msg = await sub.get()
            while self.congested():  # sinks behind: let messages wait, unacknowledged
                self._beat = time.monotonic()
                await asyncio.sleep(0.1)
            batch = [msg]
            while len(batch) < BATCH and (more := sub.get_nowait()) is not None:
                batch.append(more)
            self._ingest(sub, batch)

    def _ingest(self, sub: Subscriber, batch: list[paho.MQTTMessage]) -> None:
        self._last = self._beat = time.monotonic()
        self.received += len(batch)
        seq = self._seq
        unacked = self._unacked
        for msg in batch:
            unacked.append((seq, sub, msg.mid, msg.qos))
            seq += 1
        # one topic per call, so dead letters name the topic the message came on
        start, first = 0, self._seq
        for i in range(1, len(batch) + 1):
            if i == len(batch) or batch[i].topic != batch[start].topic:
                recs = [Raw(bytes(m.payload), first + j, self.pkey)
                        for j, m in enumerate(batch[start:i], start)]
                self.pipeline.ingest(self.pkey, recs, batch[start].topic)
                start = i
        self._seq = seq
        self.checkpoint(self._last)
        self.acknowledge()

    def acknowledge(self) -> None:
        """Acknowledge, in order, every message the pipeline has fully handled."""
        book, unacked = self._book, self._unacked
        if book is None or not unacked:
            return
        safe = book.safe()
        if self.checkpoints is not None:
            safe = min(safe, self._durable)
        n = 0
        while unacked and unacked[0][0] < safe:
            _, sub, mid, qos = unacked.popleft()
            # one that came on a lost connection is redelivered on the new one: acked there
            if not sub.lost:
                sub.ack(mid, qos)
            n += 1
        self.acked += n

    def checkpoint(self, now: float, *, force: bool = False) -> None:
        """Write the detector's state if one is due (or ``force``) and it would let messages
        be acknowledged; then they may be."""
        ck, book = self.checkpoints, self._book
        if ck is None or book is None or book.safe() <= self._durable:
            return
        if not force and not ck.due(now, self.received - self._received_at_checkpoint):
            return
        safe = ck.take(book, self._durable_before)
        if safe is not None:
            self._durable_before, self._durable = self._durable, safe
            self._received_at_checkpoint = self.received

    def tick(self, now: float, idle_after: float) -> None:
        """From the service's housekeeping: acknowledge what sinks accepted since (and a
        checkpoint holds); mark the stream idle when quiet."""
        self._beat = now
        quiet_since = max(self._last, self.pipeline.woken_at)  # (see Pipeline._wake)
        st = self.pipeline.partitions.get(self.pkey)
        if now - quiet_since >= idle_after and st is not None and not st.idle:
            self.pipeline.mark_idle(self.pkey)
        self.checkpoint(now)
        self.acknowledge()
