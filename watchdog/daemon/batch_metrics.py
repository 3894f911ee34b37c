"""What a pipeline tells the metrics after each batch of records, once per batch rather than
per event: events by dataset and action, each dataset's newest event time, late and duplicate
events (the reorder buffer's counts since the last batch), the buffer's size and the batch's
processing time.

A pipeline fills :attr:`BatchMetrics.counts` and :attr:`BatchMetrics.latest` as it decodes,
then calls :meth:`BatchMetrics.done`. The whole-stream pipeline's are not counted
(``counted=False``): the main pipeline counts the same records.
"""

from __future__ import annotations

import time

from watchdog.daemon.metrics import Metrics
from watchdog.engine.ordering import Reorderer


class BatchMetrics:
    def __init__(self, metrics: Metrics, order: Reorderer, *, counted: bool = True) -> None:
        self.metrics = metrics
        self.order = order
        self.counted = counted
        self.counts: dict[tuple[str, str], int] = {}  # (dataset, action) -> events
        self.latest: dict[str, float] = {}  # dataset -> newest event time (epoch seconds)
        self._late = self._dups = 0  # the reorder buffer's counts at the last batch

    def done(self, t0: float) -> None:
        """The batch whose processing began at ``t0`` (``time.perf_counter()``) is over."""
        if not self.counted:
            self.counts.clear()
            self.latest.clear()
            return
        m = self.metrics
        if self.counts:
            m.count_events(self.counts)
            self.counts.clear()
        if self.latest:
            m.last_event_times(self.latest)
            self.latest.clear()
        order = self.order
        stats = order.stats
        if stats.late != self._late:
            m.late.inc(stats.late - self._late)
            self._late = stats.late
        if stats.duplicates != self._dups:
            m.duplicate.inc(stats.duplicates - self._dups)
            self._dups = stats.duplicates
        # with the events it counts (the housekeeping tick also sets it, up to 0.25 s later): a
        # scrape that sees a batch's events counted sees the buffer they left behind
        m.q_reorder.set(len(order))
        m.future_held.set(order.held())
        m.batch.observe(time.perf_counter() - t0)
