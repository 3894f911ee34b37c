"""Dead letters: invalid input forwarded untouched, with the reason in headers.

The Kafka message keeps the original key and value byte for byte; headers say why it was
rejected and where it came from: ``reason`` (the ``watchdog_events_invalid_total`` label),
``detail`` (one line naming the JSON path, never a value), ``source_topic``,
``source_partition`` and ``source_offset`` (-1 for MQTT, which has neither). A rejected
record's offset is committed only after its dead letter is accepted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from watchdog.daemon.offsets import PartitionBook


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

    def __init__(self, producer: Any, topic: str, timeout: float = 30.0) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout = timeout

    async def send(self, letters: list[DeadLetter]) -> None:
        send = self.producer.send
        futures = [await send(self.topic, value=d.raw, key=d.key, headers=d.headers())
                   for d in letters]
        await asyncio.gather(*futures)


class MemoryDeadLetters:
    """For tests: keeps what it was given."""

    name = "dlq"
    timeout = 5.0

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def send(self, letters: list[DeadLetter]) -> None:
        self.letters.extend(letters)
