"""Where a Kafka partition new to this instance is read from: one window horizon
(:meth:`Detector.horizon`) before its committed offset, so that its windows are whole again
(the records in between rebuild them; their alerts were sent before and are suppressed).

The start is found with ``offsets_for_times`` on the Kafka timestamp of the last committed
record, read by a consumer of its own outside the group (the seeker), and is never more than
``rebuild_max_records`` before the committed offset. A look-up that fails starts later (at
worst at the committed offset: windows rebuilt from less), never fails the assignment.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError


class WindowRebuild:
    def __init__(self, max_records: int, log: Any) -> None:
        self.max_records = max_records
        self.log = log
        self.seeker: AIOKafkaConsumer | None = None

    async def start(self, client_kwargs: dict[str, Any]) -> None:
        self.seeker = AIOKafkaConsumer(enable_auto_commit=False, **client_kwargs)
        await self.seeker.start()

    async def start_offset(self, c: AIOKafkaConsumer, tp: TopicPartition, committed: int,
                           horizon: float) -> int:
        """Where to re-read from: ``horizon`` seconds of event time before ``committed``."""
        lowest = max(0, committed - self.max_records)
        if lowest >= committed:
            return committed
        ts = await self._timestamp_at(tp, committed - 1)
        target = max(0, ts - int(horizon * 1000))
        start = committed
        try:
            found = (await c.offsets_for_times({tp: target})).get(tp)
            if found is not None:
                start = min(found.offset, committed)
        except KafkaError as err:
            self.log.warning("offsets_for_times_failed", error=type(err).__name__)
        start = max(start, lowest)
        if start < committed:
            self.log.info("rebuilding_windows", partition=tp.partition, start=start,
                          committed=committed)
        return start

    async def _timestamp_at(self, tp: TopicPartition, offset: int) -> int:
        """Kafka timestamp (ms) of the record at ``offset``; now if it cannot be read."""
        s = self.seeker
        if s is not None:
            try:
                s.assign([tp])
                s.seek(tp, offset)
                recs = (await s.getmany(tp, timeout_ms=3000, max_records=1)).get(tp)
                if recs:
                    return int(recs[0].timestamp)
            except KafkaError as err:
                self.log.warning("timestamp_lookup_failed", error=type(err).__name__)
        return int(time.time() * 1000)
