"""Dead letters that cannot jam: a document too large to forward goes as a reference, and a
destination that accepts nothing is reported (readiness, metric) instead of stalling silently."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import orjson
from aiokafka.errors import MessageSizeTooLargeError

from tests.daemon.helpers import wait_for
from watchdog.daemon.deadletter import DeadLetter, KafkaDeadLetters
from watchdog.daemon.delivery import Outbox, RetryPolicy
from watchdog.daemon.logging import get_logger
from watchdog.daemon.metrics import Metrics


class _Producer:
    """Takes values up to ``limit`` bytes, refuses larger ones as aiokafka does (pure test)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: list[tuple[bytes, dict[str, bytes]]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> asyncio.Future[None]:
        if len(value) > self.limit:
            raise MessageSizeTooLargeError(f"{len(value)} bytes")
        self.sent.append((value, dict(headers)))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def _letter(raw: bytes, reason: str = "too_large") -> DeadLetter:
    return DeadLetter(raw, b"k", reason, "document over 1048576 bytes", "access-logs", 2, 41)


async def test_a_document_too_large_is_forwarded_as_a_reference() -> None:
    big = b'{"x":"' + b"a" * (10 << 20) + b'"}'
    small = b'{"not":"valid"}'
    producer = _Producer(limit=2 << 20)
    await KafkaDeadLetters(producer, "access-logs.dlq").send(
        [_letter(big), _letter(small, "missing_field")])
    (ref_value, ref_headers), (value, headers) = producer.sent
    assert value == small  # forwarded untouched
    assert "reference" not in headers
    ref = orjson.loads(ref_value)["dead_letter_reference"]
    assert ref == {"source_topic": "access-logs", "source_partition": 2, "source_offset": 41,
                   "size": len(big), "sha256": hashlib.sha256(big).hexdigest(),
                   "head_base64": base64.b64encode(big[:512]).decode(), "reason": "too_large"}
    assert ref_headers["reference"] == b"true"
    assert ref_headers["reason"] == b"too_large"
    assert ref_headers["source_offset"] == b"41"


async def test_a_document_the_broker_refuses_goes_as_a_reference_too() -> None:
    doc = b'{"y":"' + b"b" * 5000 + b'"}'  # under our limit, over the (lower) broker's
    producer = _Producer(limit=1000)
    await KafkaDeadLetters(producer, "access-logs.dlq").send([_letter(doc, "not_json")])
    ((value, headers),) = producer.sent
    assert orjson.loads(value)["dead_letter_reference"]["size"] == len(doc)
    assert headers["reference"] == b"true"


async def test_a_destination_that_accepts_nothing_is_reported_stalled() -> None:
    fail = True

    async def send(batch: list[int]) -> None:
        if fail:
            raise ConnectionError("down")

    done: list[int] = []
    box: Outbox[int] = Outbox("dlq", send, done.extend, Metrics(), get_logger("test"),
                              retry=RetryPolicy(initial=0.01, maximum=0.02))
    task = asyncio.create_task(box.run())
    loop = asyncio.get_running_loop()
    try:
        assert box.stalled_for(loop.time()) == 0.0
        box.put(1)
        await wait_for(lambda: box.stuck_since is not None, what="a failed send")
        assert box.stuck_since is not None
        assert box.stalled_for(box.stuck_since + 42) == 42
        fail = False
        await asyncio.wait_for(box.drained(), 5)
        assert done == [1]
        assert box.stalled_for(loop.time() + 100) == 0.0  # progressing again
    finally:
        task.cancel()


def test_dataset_labels_only_from_the_configured_names() -> None:
    m = Metrics()
    m.name_datasets(["crm.audit"])
    m.count_events({("crm.audit", "read"): 2, ("c-SECRET-0001", "read"): 1,
                    ("c-SECRET-0002", "read"): 4})
    m.last_event_times({"crm.audit": 100.0, "c-SECRET-0001": 50.0, "c-SECRET-0002": 70.0})
    text = m.exposition().decode()
    assert "SECRET" not in text
    assert 'watchdog_events_total{action="read",dataset="crm.audit"} 2.0' in text
    assert 'watchdog_events_total{action="read",dataset="other"} 5.0' in text
    assert 'watchdog_source_last_event_timestamp_seconds{dataset="other"} 70.0' in text
    assert not m._events.keys() - {("crm.audit", "read")}  # no id from an event kept
