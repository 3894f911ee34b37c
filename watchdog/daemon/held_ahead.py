"""Events held ahead of the present (a wrong clock: year 2099): counted as they come, the first
few remembered by where they are, and named in the log once every partition is quiet and some
are still held (strays, not a stream that moved on), once per change.

A held event may wait for long (a year 2099 clock): it must not hold its partition's commit back
meanwhile, so the pipeline releases its record at once. It is processed when the present
reaches it or at a shutdown's flush; a crash before that loses it from the live view (the log
at the next idle pause says where it is). Known limit: the first events of a stream that
really resumed after a quiet spell longer than ``future_seconds`` are held too, until the
present follows them; a kill -9 in that moment loses the alerts they complete
(``test_a_kill_while_a_resumed_stream_is_held_ahead_loses_no_alert``, a strict xfail)."""

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
