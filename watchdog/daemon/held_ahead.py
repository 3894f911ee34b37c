"""Events held ahead of the present (a wrong clock: year 2099): counted as they come, the first
few remembered by where they are, and named in the log once every partition is quiet and some
are still held, once per change.

A held event's record holds its partition's commit back like any buffered one, until the event
is processed or proven a stray: a stream that really resumed after a quiet spell longer than
``future_seconds`` has its first events held too, and a kill -9 before the present follows them
must find their records again (else the alerts they complete are lost). A stray is told from a
stream that moved on by what follows it on its partition: once :data:`STRAY_AFTER` later
records came (in later batches) and the present judged on them is still more than
``future_seconds`` behind it, it is a stray, and its record is released (logged, counted in
``watchdog_events_future_strays_total``), so that one event dated 2099 or a day ahead cannot
hold the commit back for ever while its stream goes on. A resumed stream's held events are
promoted by the same later records (the present follows them within a few), so they are never
taken for strays. A stray is still processed where replay processes it (when the present
reaches it, or at a shutdown's flush); a crash after its release loses it from the live view.
Chosen over suppressing nothing re-read after a restart (the previous process's holds are
unknown to the next) and over a quiet spell as the proof (a resumed stream may pause too).
Kafka records only: an MQTT message is acknowledged at once, as before, because the checkpoint
of the detector's state (daemon/checkpoint.py) keeps the held event across a crash; holding it
too had the broker redeliver what the checkpoint restored."""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook
from watchdog.daemon.partitions import PartitionState
from watchdog.engine.ordering import Reorderer

HELD_NAMED = 20  # events held ahead of the present named in the log
STRAY_AFTER = 5  # later records of its partition before a held event may be judged a stray


class HeldAhead:
    def __init__(self, metrics: Metrics, log: Any, *, counted: bool = True) -> None:
        """``counted=False``: a second view of records another pipeline counts and logs."""
        self.metrics = metrics
        self.log = log
        self.counted = counted
        self._where: dict[str, tuple[int, int, float]] = {}  # event id -> partition, offset, t
        self._logged = 0
        # partition key -> records held back for events held ahead: [id, offset, time, book,
        # later records seen (-1: read in the current batch)]
        self.waiting: dict[int, list[list[Any]]] = {}

    def held(self, eid: str, pkey: int, partition: int, offset: int, t: float,
             book: PartitionBook | None, st: PartitionState | None) -> bool:
        """Returns whether its record keeps holding the book: a Kafka record does; a stream's
        message (MQTT) is released at once, the checkpoint of the detector's state keeps the
        held event across a crash (daemon/checkpoint.py)."""
        kept = book is not None and (st is None or st.kafka)
        if kept:
            self.waiting.setdefault(pkey, []).append([eid, offset, t, book, -1])
        elif book is not None:
            book.release(offset)
        if self.counted:
            self.metrics.future.inc()
            if len(self._where) < HELD_NAMED:
                self._where[eid] = (partition, offset, t)
        return kept

    def followed(self, pkey: int, later: int, order: Reorderer,
                 meta: Mapping[str, tuple[Any, ...]]) -> list[tuple[str, PartitionBook, int]]:
        """``later`` records of ``pkey`` were read after those waiting (the batch's own held
        ones aside); returns the strays (id, book, offset), whose records may be released."""
        entries = self.waiting.get(pkey)
        if not entries:
            return []
        strays: list[tuple[str, PartitionBook, int]] = []
        keep = []
        present = order.present_at(pkey) + order.future
        for entry in entries:
            eid, off, t, book, n = entry
            m = meta.get(eid)
            if m is None or m[0] is not book or m[1] != off:
                continue  # processed (the present reached it) or its partition revoked
            n = entry[4] = 0 if n < 0 else n + later
            if n >= STRAY_AFTER and t > present:
                strays.append((eid, book, off))
            else:
                keep.append(entry)
        if keep:
            self.waiting[pkey] = keep
        else:
            del self.waiting[pkey]
        if strays and self.counted:
            self.metrics.future_strays.inc(len(strays))
            self.log.warning(
                "events_held_ahead_strays", partition=strays[0][1].partition,
                offsets=[off for _, _, off in strays[:HELD_NAMED]], present=present - order.future,
                consequence="their offsets may be committed: processed when the stream reaches "
                            "their time or at shutdown, lost to a crash before that")
        return strays

    def forget(self, pkeys: Container[int]) -> None:
        """Revoked partitions: their books are stale."""
        for p in [p for p in self.waiting if p in pkeys]:
            del self.waiting[p]

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
