"""Events held ahead of the present (a wrong clock: year 2099): counted as they come, the first
few remembered by where they are, and named in the log once every partition is quiet and some
are still held (strays, not a stream that moved on), once per change."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from watchdog.daemon.metrics import Metrics
from watchdog.engine.ordering import Reorderer

HELD_NAMED = 20  # events held ahead of the present named in the log


class HeldAhead:
    def __init__(self, metrics: Metrics, log: Any, *, counted: bool = True) -> None:
        """``counted=False``: a second view of records another pipeline counts and logs."""
        self.metrics = metrics
        self.log = log
        self.counted = counted
        self._where: dict[str, tuple[int, int, float]] = {}  # event id -> partition, offset, t
        self._logged = 0

    def held(self, eid: str, partition: int, offset: int, t: float) -> None:
        if not self.counted:
            return
        self.metrics.future.inc()
        if len(self._where) < HELD_NAMED:
            self._where[eid] = (partition, offset, t)

    def quiet(self, order: Reorderer, pending: Container[str]) -> None:
        """Every partition is quiet; ``pending``: the ids of events not released yet."""
        n = order.held()
        if n == self._logged or not self.counted:
            return
        self._logged = n
        if not n:
            return
        where = self._where
        for eid in [e for e in where if e not in pending]:
            del where[eid]  # released since
        self.log.warning(
            "events_held_ahead", held=n, present=order.present(),
            where=[{"partition": p, "offset": o, "event_time": t} for p, o, t in where.values()],
            consequence="they move no watermark; processed when the stream reaches their "
                        "time or at shutdown")
