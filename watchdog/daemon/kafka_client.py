"""Kafka connection settings shared by every client (TLS, SASL incl. SCRAM) and the producer.

SASL mechanisms are passed through to aiokafka as configured (``PLAIN``, ``SCRAM-SHA-256``,
``SCRAM-SHA-512``); the password comes from ``WATCHDOG_KAFKA_SASL_PASSWORD`` in practice.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.helpers import create_ssl_context

from watchdog.daemon.config import Kafka

PROBE_SECONDS = 3.0
# seconds for the last commit, and for leaving the group, at shutdown; and for a look-up of
# end offsets (the Kafka source's, :mod:`watchdog.daemon.sources.kafka`)
FINISH_STEP = 2.0


def client_kwargs(k: Kafka) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "bootstrap_servers": k.bootstrap,
        "client_id": k.client_id,
        "security_protocol": k.security_protocol,
        "request_timeout_ms": k.request_timeout_ms,
    }
    if k.security_protocol in ("SSL", "SASL_SSL"):
        tls = k.tls
        ctx = create_ssl_context(
            cafile=tls.cafile if tls else None,
            certfile=tls.certfile if tls else None,
            keyfile=tls.keyfile if tls else None,
            password=tls.password if tls else None,
        )
        ctx.check_hostname = tls.check_hostname if tls else True
        kw["ssl_context"] = ctx
    if k.sasl is not None:
        kw["sasl_mechanism"] = k.sasl.mechanism
        kw["sasl_plain_username"] = k.sasl.username
        kw["sasl_plain_password"] = k.sasl.password
    return kw


async def start_producer(k: Kafka, log: Any,
                         max_request_size: int = (1 << 20) + (64 << 10)) -> AIOKafkaProducer:
    """acks=all; idempotent when the broker supports it (``idempotence: auto`` tries, and
    falls back: Tansu 0.6 answers InitProducerId with an error)."""
    # max_request_size: a dead letter of a document the decoder accepts fits whole (bigger
    # ones go as references, watchdog.daemon.deadletter); aiokafka's default is 1 MiB
    base = dict(client_kwargs(k), acks="all", linger_ms=5, max_request_size=max_request_size)
    if k.idempotence != "off":
        producer = AIOKafkaProducer(**base, enable_idempotence=True)
        sender_log = logging.getLogger("aiokafka.producer.sender")
        level = sender_log.level
        if k.idempotence == "auto":  # the probe's failure is expected on some brokers
            sender_log.setLevel(logging.CRITICAL)
        try:
            await producer.start()
        except KafkaConnectionError:  # the broker is unreachable: nothing said about idempotence
            await producer.stop()
            raise
        except Exception as err:
            await producer.stop()
            if k.idempotence == "on":
                raise
            log.info("producer_idempotence_unavailable", error=type(err).__name__,
                     consequence="acks=all without idempotence: a retried send may duplicate "
                     "an alert (same alert_id)")
        else:
            return producer
        finally:
            sender_log.setLevel(level)
    producer = AIOKafkaProducer(**base)
    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # else "Unclosed AIOKafkaProducer" at every retry
        raise
    return producer


async def connection_problem(bootstrap: str) -> str | None:
    """Why the bootstrap servers cannot be reached over TCP (e.g. ``127.0.0.1:9092: Connect
    call failed ... Connection refused``), or None when one answers: aiokafka's error says only
    "Unable to bootstrap", and an operator needs the reason, once per retry."""
    problems = []
    for server in (s.strip() for s in bootstrap.split(",") if s.strip()):
        host, _, port = server.rpartition(":")
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                _, writer = await asyncio.open_connection(host.strip("[]") or server,
                                                          int(port or 9092))
        except TimeoutError:
            problems.append(f"{server}: no answer within {PROBE_SECONDS:.0f} s")
        except OSError as err:  # "Connection refused", "Name or service not known", ...
            problems.append(f"{server}: {os.strerror(err.errno) if err.errno else err}")
        except ValueError as err:
            problems.append(f"{server}: {err}")
        else:
            writer.close()
            return None
    return "; ".join(problems) or None


async def keep_reading(step: Callable[[], Awaitable[None]], close: Callable[[], Awaitable[None]],
                       log: Any, failed: str) -> None:
    """``step()`` for ever, the reader's own client kept between steps; a broker error closes
    it (``close``), is logged as ``failed`` and retried after 1 s, doubling up to 30 s."""
    delay = 1.0
    try:
        while True:
            try:
                await step()
                delay = 1.0
            except KafkaError as err:
                log.warning(failed, error=type(err).__name__, retry_in=delay)
                await close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
    finally:
        await close()
