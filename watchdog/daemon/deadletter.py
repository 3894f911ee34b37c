"""Dead letters: invalid input forwarded untouched, with the reason in headers.

The Kafka message keeps the original key and value byte for byte; headers say why it was
rejected and where it came from: ``reason`` (the ``watchdog_events_invalid_total`` label),
``detail`` (one line naming the JSON path, never a value), ``source_topic``,
``source_partition`` and ``source_offset`` (-1 for MQTT, which has neither). A rejected
record's offset is committed only after its dead letter is accepted.

A document larger than the decoder accepts (``too_large``), or one the broker refuses as too
large, is forwarded as a reference instead, so that it cannot jam the queue (a send retried
forever, every later dead letter and every commit behind it): a JSON value naming where the
original is (source topic, partition, offset), its size, SHA-256 and first bytes, and the
reason; header ``reference: true``. The original stays findable in the source topic. A key
over 1 KiB (a record the broker refused for its key) is not forwarded with the reference,
which names it by ``key_size`` and ``key_sha256`` instead.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError

from watchdog.daemon.offsets import PartitionBook
from watchdog.decode import DEFAULT_MAX_BYTES

HEAD_BYTES = 512  # of a document forwarded as a reference
# a reference keeps the record's key up to this size; a longer key (the record was too large
# for it) is named in the reference by size and SHA-256 instead, or the reference would be too
KEY_BYTES = 1024
# the dead-letter producer's max_request_size: a document the decoder accepts (1 MiB) goes
# through whole with its headers; anything larger goes as a reference
PRODUCER_MAX_REQUEST = DEFAULT_MAX_BYTES + (64 << 10)
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError)


@dataclass(slots=True)
class DeadLetter:
    raw: bytes
    key: bytes | None
    reason: str
    detail: str
    topic: str
    partition: int = -1
    offset: int = -1
    book: PartitionBook | None = field(default=None, repr=False)

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("reason", self.reason.encode()),
            ("detail", self.detail.encode()[:1000]),
            ("source_topic", self.topic.encode()),
            ("source_partition", str(self.partition).encode()),
            ("source_offset", str(self.offset).encode()),
        ]

    def reference(self) -> bytes:
        """What is forwarded instead of a document too large to forward: where it is."""
        raw = self.raw
        ref: dict[str, object] = {
            "source_topic": self.topic, "source_partition": self.partition,
            "source_offset": self.offset, "size": len(raw),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "head_base64": base64.b64encode(raw[:HEAD_BYTES]).decode(),
            "reason": self.reason}
        if self.key is not None and len(self.key) > KEY_BYTES:  # named, not forwarded
            ref["key_size"] = len(self.key)
            ref["key_sha256"] = hashlib.sha256(self.key).hexdigest()
        return orjson.dumps({"dead_letter_reference": ref})

    def reference_key(self) -> bytes | None:
        """The key a reference goes with: the record's, unless that is what is too large."""
        return self.key if self.key is None or len(self.key) <= KEY_BYTES else None

    def message(self, max_value: int, whole: bool = True) -> tuple[bytes, list[tuple[str, bytes]]]:
        """(value, headers) to send: the document itself, or its reference when it is over
        ``max_value`` bytes or not ``whole`` (the broker refused it)."""
        if whole and len(self.raw) <= max_value:
            return self.raw, self.headers()
        return self.reference(), [*self.headers(), ("reference", b"true")]


def accepted(letters: list[DeadLetter]) -> None:
    """Outbox callback: the DLQ accepted these, so their offsets may be committed."""
    for d in letters:
        if d.book is not None:
            d.book.done_inflight(d.offset)


class DeadLetters(Protocol):
    name: str
    timeout: float

    async def send(self, letters: list[DeadLetter]) -> None: ...


class KafkaDeadLetters:
    """Writes to the dead-letter topic (``access-logs.dlq``) with the shared producer."""

    name = "dlq"

    def __init__(self, producer: Any, topic: str, timeout: float = 30.0,
                 max_value: int = DEFAULT_MAX_BYTES) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout = timeout
        self.max_value = max_value  # larger documents are forwarded as references

    async def send(self, letters: list[DeadLetter]) -> None:
        futures = [await self._send(d, whole=True) for d in letters]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for d, res in zip(letters, results, strict=True):
            if isinstance(res, _TOO_LARGE):  # the broker's limit is lower than ours
                await (await self._send(d, whole=False))
            elif isinstance(res, BaseException):
                raise res

    async def _send(self, d: DeadLetter, *, whole: bool) -> Any:
        value, headers = d.message(self.max_value, whole)
        key = d.key if whole else d.reference_key()
        try:
            return await self.producer.send(self.topic, value=value, key=key, headers=headers)
        except _TOO_LARGE:
            if not whole:
                raise
            return await self._send(d, whole=False)


class MemoryDeadLetters:
    """For tests: keeps what it was given."""

    name = "dlq"
    timeout = 5.0

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def send(self, letters: list[DeadLetter]) -> None:
        self.letters.extend(letters)
