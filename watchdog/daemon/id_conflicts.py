"""Events that reuse a known ``event.id`` with other content (not redeliveries: the detector
processes them): counted, and the first few logged by where they are, never by what they say."""

from __future__ import annotations

from typing import Any

from watchdog.daemon.metrics import Metrics

LOGGED = 20  # conflicts logged one by one; the metric counts them all


class IdConflicts:
    def __init__(self, metrics: Metrics, log: Any, *, counted: bool = True) -> None:
        """``counted=False``: a second view of records another pipeline counts and logs."""
        self.metrics = metrics
        self.log = log
        self.counted = counted
        self.seen = 0

    def conflict(self, topic: str, partition: int, offset: int) -> None:
        if not self.counted:
            return
        self.metrics.id_conflicts.inc()
        self.seen += 1
        if self.seen <= LOGGED:
            self.log.warning("event_id_conflict", topic=topic, partition=partition,
                             offset=offset, consequence="a known event.id with other content: "
                             "processed as a new event, not dropped as a redelivery")
