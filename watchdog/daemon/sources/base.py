"""The source protocol, and the record shape for sources that are not Kafka.

A source feeds :meth:`Pipeline.ingest <watchdog.daemon.pipeline.Pipeline.ingest>` with
batches of records of one partition (Kafka) or stream (MQTT: a fixed partition key), tells the
pipeline when a partition is caught up and quiet (``mark_idle``), and commits what the
pipeline says is safe. The service drives it: ``start`` (connect), ``run`` (consume until
``stop``), then after the pipeline is flushed and alerts delivered, ``finish`` (last commit,
disconnect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# partition keys of streams that are not Kafka partitions (Kafka partitions are 0..n)
MQTT_STREAM = 1 << 20
MEMORY_STREAM = 1 << 21


@dataclass(frozen=True, slots=True)
class Raw:
    """A record from a source without Kafka's offsets (MQTT, tests)."""

    value: bytes | None
    offset: int = -1
    partition: int = -1
    key: bytes | None = None


class Source(Protocol):
    name: str
    # what it leaves uncommitted is read again by the next start or owner (Kafka); False
    # where a record left is lost (MQTT): a stop then processes the reorder buffer anyway
    rereads: bool

    async def start(self) -> None: ...

    async def run(self) -> None:
        """Consume until :meth:`stop`; survive broker outages (reconnect, retry)."""
        ...

    def stop(self) -> None:
        """Stop consuming soon; :meth:`run` returns."""
        ...

    async def finish(self) -> None:
        """After the pipeline is flushed and alerts delivered: last commit, disconnect."""
        ...

    def alive(self, now: float) -> bool:
        """The consume loop has ticked recently (``now`` is ``time.monotonic()``)."""
        ...

    @property
    def ready(self) -> bool:
        """Connected (broker reachable)."""
        ...
