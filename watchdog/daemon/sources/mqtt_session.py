"""One MQTT v5 subscriber connection on asyncio, with acknowledgements sent by the caller.

aiomqtt (2.5) acknowledges every QoS 1 message as it is received and has no public switch
for manual acknowledgements (empicano/aiomqtt#345, PR #346 open), so a crash lost what was
received but not yet processed. paho-mqtt (which aiomqtt wraps) has them (``manual_ack``,
``ack(mid, qos)``), and its documented external-loop API (``loop_read``/``loop_write``/
``loop_misc`` and the ``on_socket_*`` callbacks) lets asyncio drive it: this module is that
glue and nothing more. The MQTT sink keeps aiomqtt (publishing needs no manual acks).

MQTT v5, because a v3.1.1 subscriber gets at most the broker's ``max_inflight_messages``
(mosquitto: 20) unacknowledged messages, and the daemon holds acknowledgements for as long as
an event waits in the reorder buffer; a v5 client announces its own Receive Maximum. The
session is kept ``session_expiry_seconds`` after a disconnect (``clean_session: false``), so
the broker redelivers what was never acknowledged, and keeps what arrives meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from watchdog.daemon.config import Mqtt

RECEIVE_MAXIMUM = 65535  # the most MQTT v5 allows unacknowledged at once
MISC_INTERVAL = 1.0  # paho's keepalive pings and retries


class MqttSessionError(Exception):
    """The connection failed or was lost (the caller reconnects)."""


class Subscriber:
    """``async with Subscriber(m, tls_ctx) as s: await s.subscribe(...); msg = await s.get();
    s.ack(msg)``. Messages are acknowledged only by :meth:`ack`, in the order received."""

    def __init__(self, m: Mqtt, tls: ssl.SSLContext | None, *, timeout: float = 10.0) -> None:
        self.m = m
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        # None after the last message: the connection was lost (cheaper than racing every
        # get against the loss: messages come thousands a second)
        self.messages: asyncio.Queue[paho.MQTTMessage | None] = asyncio.Queue()
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._lost.add_done_callback(lambda _f: self.messages.put_nowait(None))
        self._subscribed: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._misc: asyncio.Task[None] | None = None
        self.session_present = False
        c = self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=m.client_id,
                                       protocol=paho.MQTTv5, manual_ack=True,
                                       reconnect_on_failure=False)
        if m.username is not None:
            c.username_pw_set(m.username, m.password)
        if tls is not None:
            c.tls_set_context(tls)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write

    # -- public ------------------------------------------------------------------------------
    async def __aenter__(self) -> Subscriber:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        props.SessionExpiryInterval = 0 if self.m.clean_session else self.m.session_expiry_seconds
        m = self.m
        try:
            async with asyncio.timeout(self.timeout):
                # connect() resolves and opens the TCP (and TLS) connection: blocking
                await self._loop.run_in_executor(None, lambda: self._client.connect(
                    m.host, m.port, m.keepalive, clean_start=m.clean_session,
                    properties=props))
                await self._either(self._connected)
        except (OSError, TimeoutError, ssl.SSLError, ValueError) as err:
            self._shut()
            raise MqttSessionError(f"cannot connect to {m.host}:{m.port}: "
                                   f"{type(err).__name__}: {err}") from err
        except BaseException:
            self._shut()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self._lost.done():
            with contextlib.suppress(Exception):
                self._client.disconnect()
                async with asyncio.timeout(2.0):
                    await asyncio.shield(self._lost)
        self._shut()

    async def subscribe(self, filters: Sequence[str], qos: int) -> None:
        rc, mid = self._client.subscribe([(f, qos) for f in filters])
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise MqttSessionError(f"subscribe failed: {paho.error_string(rc)}")
        fut = self._subscribed[mid] = self._loop.create_future()
        async with asyncio.timeout(self.timeout):
            codes = await self._either(fut)
        refused = [f for f, code in zip(filters, codes, strict=False) if code.is_failure]
        if refused:
            raise MqttSessionError(f"subscription refused for {refused}")

    async def get(self) -> paho.MQTTMessage:
        """The next message; raises :class:`MqttSessionError` when the connection is lost."""
        msg = await self.messages.get()
        if msg is None:
            self.messages.put_nowait(None)  # for the next caller too
            err = self._lost.exception()
            raise MqttSessionError(str(err) if err else "connection lost")
        return msg

    def get_nowait(self) -> paho.MQTTMessage | None:
        """The next message if one is waiting (None: none, or the connection is lost)."""
        q = self.messages
        if q.empty():
            return None
        msg = q.get_nowait()
        if msg is None:
            q.put_nowait(None)
        return msg

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge message ``mid`` (PUBACK for QoS 1): the broker may forget it."""
        if qos > 0 and not self._lost.done():
            self._client.ack(mid, qos)

    @property
    def lost(self) -> bool:
        return self._lost.done()

    # -- internals ---------------------------------------------------------------------------
    async def _either(self, fut: asyncio.Future[Any]) -> Any:
        """``fut``'s result, unless the connection is lost first."""
        done, _ = await asyncio.wait({fut, self._lost}, return_when=asyncio.FIRST_COMPLETED)
        if fut in done:
            return fut.result()
        fut.cancel()
        err = self._lost.exception()
        raise MqttSessionError(str(err) if err else "connection lost")

    def _shut(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
        if not self._lost.done():
            self._lost.set_result(None)
        sock = self._client.socket()
        if sock is not None:
            self._drop(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _drop(self, sock: Any) -> None:
        fd = sock.fileno()
        if fd >= 0:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)

    def _fail(self, why: str) -> None:
        if not self._lost.done():
            self._lost.set_exception(MqttSessionError(why))
            self._lost.exception()  # retrieved: a lost connection nobody awaits is no error

    async def _tick(self) -> None:
        # keepalive pings on a timer: no event to wait for
        while True:
            if self._client.loop_misc() != paho.MQTT_ERR_SUCCESS:
                return
            await asyncio.sleep(MISC_INTERVAL)

    # paho's callbacks: on the loop's thread, except socket-open/register-write, which the
    # executor thread running connect() calls
    def _on_socket_open(self, client: paho.Client, _u: Any, sock: Any) -> None:
        def readable() -> None:
            try:
                while True:
                    client.loop_read()
                    # an SSL socket may hold decoded bytes the read above left (paho #131)
                    if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                        break
            except Exception as err:  # a broken connection: the caller reconnects
                self._fail(f"{type(err).__name__}: {err}")

        def start() -> None:
            self._loop.add_reader(sock.fileno(), readable)
            self._misc = self._loop.create_task(self._tick())

        self._loop.call_soon_threadsafe(start)

    def _on_socket_close(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        if isinstance(sock, socket.socket | ssl.SSLSocket):
            self._loop.call_soon_threadsafe(self._drop, sock)

    def _on_register_write(self, client: paho.Client, _u: Any, sock: Any) -> None:
        def writable() -> None:
            try:
                client.loop_write()
            except Exception as err:
                self._fail(f"{type(err).__name__}: {err}")

        self._loop.call_soon_threadsafe(self._loop.add_writer, sock.fileno(), writable)

    def _on_unregister_write(self, _c: paho.Client, _u: Any, sock: Any) -> None:
        fd = sock.fileno()
        if fd >= 0:
            self._loop.remove_writer(fd)

    def _on_connect(self, _c: paho.Client, _u: Any, flags: Any, rc: ReasonCode,
                    _p: Any) -> None:
        if rc.is_failure:
            self._fail(f"connection refused: {rc}")
            return
        self.session_present = bool(flags.session_present)
        if not self._connected.done():
            self._connected.set_result(None)

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, rc: ReasonCode,
                       _p: Any) -> None:
        if rc.is_failure:
            self._fail(f"disconnected: {rc}")
        elif not self._lost.done():
            self._lost.set_result(None)

    def _on_subscribe(self, _c: paho.Client, _u: Any, mid: int, codes: list[ReasonCode],
                      _p: Any) -> None:
        fut = self._subscribed.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(codes)

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        self.messages.put_nowait(msg)
