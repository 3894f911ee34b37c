"""The daemon's processing step: raw records in, alerts and dead letters out, offsets tracked.

Every source (Kafka, MQTT, memory) hands batches of records to :meth:`Pipeline.ingest`, which
is synchronous: decode with the same :class:`~watchdog.decode.Decoder` as replay, push into the
one :class:`~watchdog.engine.detector.Detector` of this instance (partition = Kafka partition
number, or a fixed key for each other stream), and pass alerts on to :class:`Delivery`.

Bookkeeping per event, so that at-least-once holds:

- while its event waits in the reorder buffer (held ahead of the present too, until it is
  proven a stray: :mod:`.held_ahead`), a record holds its partition's commit back;
- an alert holds back the record of the event that completed it (the last of its
  ``event_ids``) until every sink accepted it; a dead letter, until the DLQ accepted it;
- records below the offset a partition was committed at when it was assigned (re-read to
  rebuild the windows) feed the windows, their alerts suppressed (sent before), unless this
  process processed them already (skipped: :mod:`.partitions`); alert ids sent are too;
- an instance that owns only some partitions of the topic holds back the alerts of rules
  that judge a whole dataset (:data:`WHOLE_STREAM_RULES`: ``log_gap``), which it cannot see;
  the whole-stream reader (:mod:`.sources.whole_stream`) sends them instead, from a second
  pipeline (``whole_stream=True``) that sees every partition. That pipeline counts and
  dead-letters nothing (the main one does, for the same records) and shares the main one's
  alert ids, so that an alert one of them sent is not sent again by the other.

What is known of each partition is in :attr:`Pipeline.partitions`; :mod:`.partitions` decides.
What becomes of released events and alerts: :mod:`.dispatch`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from watchdog.alerts.model import Alert
from watchdog.daemon.alert_ids import AlertIds
from watchdog.daemon.batch_metrics import BatchMetrics
from watchdog.daemon.deadletter import DeadLetter
from watchdog.daemon.delivery import Delivery, Outbox
from watchdog.daemon.dispatch import WHOLE_STREAM_RULES, Dispatch
from watchdog.daemon.held_ahead import HeldAhead
from watchdog.daemon.id_conflicts import IdConflicts
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook
from watchdog.daemon.partitions import PartitionPlan, PartitionState
from watchdog.daemon.record_meta import Meta
from watchdog.daemon.rejections import RecordLike, Rejections
from watchdog.decode import Decoder, Rejection
from watchdog.engine.detector import Detector, Stage
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import AHEAD, DUPLICATE, LATE, QUEUED, Released, Reorderer
from watchdog.events import AccessEvent, check_times

__all__ = ["WHOLE_STREAM_RULES", "Pipeline"]

_NEG_INF = float("-inf")
_TOMBSTONE = Rejection("not_json", "empty message (no value)", b"")


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        delivery: Delivery,
        dead_letters: Outbox[DeadLetter],
        metrics: Metrics,
        log: Any,
        *,
        stages: Sequence[Stage] = (),
        lateness: float = 60.0,
        future: float = 3600.0,
        dedupe_alert_ids: int = 100_000,
        alert_ids: AlertIds | None = None,
        whole_stream: bool = False,
        rules: bool = True,
    ) -> None:
        """``rules=False``: the anomaly service (``detection.only: anomaly``): its stages only;
        invalid records are counted and logged, not dead-lettered (the rules service, reading
        the same records in its own group, does that)."""
        self.engine = engine
        # an obligation alert cites a record, not an event: it is held to the event whose
        # processing judged it (a re-read event's obligations were sent before)
        engine.judged_at = {}
        self.order = order = Reorderer(lateness=lateness, future=future)
        # early: alerts that need no other event are raised on arrival, not after the lateness
        # (the whole-stream pipeline runs only ordered rules: nothing to gain there)
        self._early = rules and not whole_stream
        self.detector = Detector(engine, order, stages, early=self._early, rules=rules,
                                 hold_stages=True)
        self.rules = rules
        self.delivery = delivery
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.log = log
        self.decoder = Decoder(AccessEvent, check=check_times)
        # every partition (Kafka) and stream (MQTT) read, which the watermark waits for
        self.partitions: dict[int, PartitionState] = {}
        self.plan = PartitionPlan()
        self.skipped = 0  # re-read records this process processed before (PartitionPlan.fed)
        self._meta: dict[str, Meta] = {}
        # records of events that reused the id of an event still buffered (a conflict), by the
        # event object: meta, keyed by id, already names the first version's record
        self._variants: dict[int, Meta] = {}
        # alert ids sent, by this pipeline or by the one it shares them with
        self.alert_ids = alert_ids if alert_ids is not None else AlertIds(dedupe_alert_ids)
        self.whole_stream = whole_stream
        self.batch_metrics = BatchMetrics(metrics, order, counted=not whole_stream)
        self._flushed_at = 0  # detector.processed at the last full flush
        self.rejections = Rejections(dead_letters, metrics, log, counted=not whole_stream,
                                     dead_letter=rules)
        self.detector.on_fault = lambda ev, err: self.rejections.failed(  # one event, not all
            err, event_id=ev.event.id, offset=self._meta.get(ev.event.id, (None, None))[1])
        self.detector.on_stage_fault = self.rejections.stage_failed  # one list, not all
        self.held_ahead = HeldAhead(metrics, log, counted=not whole_stream)
        self.id_conflicts = IdConflicts(metrics, log, counted=not whole_stream)
        self.dispatch = Dispatch(engine, delivery, metrics, self.alert_ids, self._meta,
                                 self._variants, counted=not whole_stream)
        # the archive (watchdog.daemon.sinks.archive.DaemonArchive) when configured: each
        # batch's valid events, holding the batch's commit until they are written
        self.archive: Any = None
        # the stages' state is saved for the next start (daemon/model_state.py): a shutdown
        # drains them rather than closing their open windows
        self.stages_go_on = False
        self.last_progress = time.monotonic()
        # when records came again after every partition was idle: a source counts the quiet
        # time of each partition from here (they are waited for again)
        self.woken_at = float("-inf")
        # events before this time come late and are judged on the partial view's state of the
        # whole-stream rules: their alerts of those rules are held back (see partial_view)
        self._partial_until = _NEG_INF

    # -- partitions ----------------------------------------------------------------------
    def open_partition(self, pkey: int, committed: int, *, start: int | None = None,
                       resume: int = -1) -> PartitionState:
        """A Kafka partition was assigned; its commit is tracked from ``committed``, reading
        starts at ``start`` (default: there); records below ``resume`` rebuild windows only."""
        st = PartitionState(pkey, PartitionBook(pkey, committed), resume=resume,
                            start=committed if start is None else start)
        st.pos = st.start
        self.order.expect(self.plan.assigned(self.partitions))
        self._add(st)
        self.plan.opened(st)
        return st

    def track_stream(self, pkey: int) -> PartitionBook:
        """A stream whose messages the source acknowledges when the book says they are safe
        (numbered from 0 by the source, as offsets)."""
        book = PartitionBook(pkey, 0)
        self._add(PartitionState(pkey, book, kafka=False))
        return book

    def _add(self, st: PartitionState) -> None:
        """A partition or stream whose events must be waited for before the watermark moves."""
        self.partitions[st.key] = st
        self.order.expect({st.key})

    def close_partitions(self, pkeys: Iterable[int]) -> None:
        """Revoked: stop tracking; their events still in the buffer are processed anyway."""
        parts = self.partitions
        pkeys = set(pkeys)
        for p in pkeys:
            parts.pop(p, None)
        self.held_ahead.forget(pkeys)
        self.order.assign(set(parts))

    @property
    def books(self) -> dict[int, PartitionBook]:
        """The Kafka partitions' books (committed by the source)."""
        return {p: st.book for p, st in self.partitions.items()
                if st.kafka and st.book is not None}

    def unreleased(self) -> dict[int, int] | None:
        """Per Kafka partition, the lowest offset whose event the stages have not seen (every
        record below it was released to them, or dropped); None while re-read records still
        wait in the buffer (their partition's offsets do not cover them)."""
        parts = self.partitions
        if any(st.kafka and st.pos < st.resume for st in parts.values()) or any(
                m[3] for m in self._meta.values()):
            return None
        return {p: st.book.unreleased() for p, st in parts.items()
                if st.kafka and st.book is not None}

    def all_idle(self) -> bool:
        return self.plan.all_idle(self.partitions)

    @property
    def rejected(self) -> int:
        return self.rejections.count

    @property
    def suppressed(self) -> int:
        """Alerts not sent: see :mod:`.dispatch`."""
        return self.dispatch.suppressed

    @property
    def partial_view(self) -> bool:
        """This instance owns only some partitions of the topic."""
        return self.dispatch.partial_view

    @partial_view.setter
    def partial_view(self, partial: bool) -> None:
        if self.dispatch.partial_view and not partial:
            # whole again (a scale-in): the partitions new here come with what their previous
            # owner left uncommitted (its reorder buffer), behind what this pipeline released
            # with its partial view: late, processed at once, one partition's batch after
            # another's, by whole-stream rules that saw only this view's partitions so far (a
            # dataset's next number, in a partition read later, was taken for a gap: false
            # log_gap in 2 of 3 runs of the scaling test with partitions placed by sticky).
            # Held back as the partial view's: the whole-stream reader read them in order.
            self._partial_until = max(self._partial_until, self.order.released_upto)
        self.dispatch.partial_view = partial

    # -- records in ------------------------------------------------------------------------
    def ingest(self, pkey: int, records: Sequence[RecordLike], topic: str) -> float:
        """Process one batch of records from one partition, in offset order; returns the
        latest event time in it (-inf if none was valid)."""
        high = _NEG_INF
        st = self.partitions.get(pkey)
        if st is not None and st.kafka and records:
            records = self._unseen(st, records)
        if not records:
            return high
        t0 = time.perf_counter()
        now = time.monotonic()
        book, resume = (st.book, st.resume) if st is not None else (None, -1)
        if st is not None and st.idle:
            self._wake(pkey, now)
        # a partition with a backlog (records known to be unread) is not judged on arrival: at
        # a shutdown in a backlog the buffer is not flushed, and its events are read again
        # after the restart; had they been alerted on arrival, they would be again
        self.detector.early = self._early and not (st is not None and st.behind)
        decode = self.decoder.decode
        push = self.detector.push
        meta = self._meta
        order = self.order
        released: Released = []  # by the batch's pushes, in order
        counts = self.batch_metrics.counts
        latest = self.batch_metrics.latest
        alerts: list[Alert] = []
        archive = self.archive
        archiving = archive is not None and not self.whole_stream
        # the archived events as columns (no tuple per event)
        a_ids: list[str] = []
        a_times: list[float] = []
        a_raws: list[bytes] = []
        # subject ids only for an archive that stores them (format 1; by default it does not)
        a_subjects: list[tuple[str, ...]] | None = (
            [] if archiving and archive.keeps_subjects else None)
        archived_from = -1  # offset of the first archived record: holds the batch's commit
        n_ahead = 0  # events held ahead of the present in this batch
        for rec in records:
            off = rec.offset
            raw = rec.value
            ev = decode(raw) if raw is not None else _TOMBSTONE
            rebuild = off < resume
            if isinstance(ev, Rejection):
                if not rebuild:
                    self.rejections.reject(ev, rec, topic, book)
                continue
            e = ev.event
            key = (e.dataset or "", e.action)
            counts[key] = counts.get(key, 0) + 1
            t = ev.timestamp.timestamp()
            if t > high:
                high = t
            if t > latest.get(key[0], 0.0):
                latest[key[0]] = t
            eid = e.id
            if archiving and not rebuild:  # re-read records were archived before
                if not a_ids:
                    archived_from = off
                a_ids.append(eid)
                a_times.append(t)
                a_raws.append(raw)  # type: ignore[arg-type]
                if a_subjects is not None:
                    a_subjects.append(ev.data.subject_ids)
            owner = None if rebuild else book  # the book that tracks this record, if any
            fresh = eid not in meta
            if fresh:
                meta[eid] = (owner, off, now, rebuild)
                if owner is not None:
                    owner.hold(off)
            pushed = push(ev, t, pkey)
            last = pushed.outcome
            if last and fresh:
                if last == DUPLICATE:  # a redelivery of an event already released
                    del meta[eid]
                    if owner is not None:
                        owner.release(off)
                elif last == AHEAD:  # held apart, maybe for long: see HeldAhead
                    n_ahead += 1
                    if not self.held_ahead.held(eid, pkey, rec.partition, off, t, owner, st):
                        meta[eid] = (None, off, now, rebuild)  # an MQTT message: acknowledged
            if pushed.conflict:
                self.id_conflicts.conflict(topic, rec.partition, rec.offset)
                if not fresh and last in (QUEUED, LATE):
                    # held like any record until it is processed (else the commit could pass
                    # it while it waits in the buffer, and a crash would lose it)
                    self._variants[id(ev)] = (owner, off, now, rebuild)
                    if owner is not None:
                        owner.hold(off)
            if pushed.released:
                released.extend(pushed.released)
            if pushed.alerts:
                alerts.extend(pushed.alerts if t >= self._partial_until
                              else self.dispatch.hold_back(pushed.alerts))
        # the stages' part of the batch (the detector holds it: hold_stages); anomaly alerts,
        # none of a whole-stream rule, so nothing to hold back
        alerts.extend(self.detector.release_stages())
        # once per batch, not per event: the books and the sinks see the batch's releases and
        # alerts together (an early alert's event may still be buffered: it is in meta)
        if a_ids and archive is not None:
            archive.put_events(a_ids, a_times, a_raws, a_subjects, book, archived_from)
        if released or alerts:
            self.dispatch.released(released, alerts)
        if pkey in self.held_ahead.waiting:  # strays' records no longer hold the commit
            for eid, sb, off in self.held_ahead.followed(pkey, len(records) - n_ahead, order, meta):
                meta[eid] = (None, *meta[eid][1:])
                sb.release(off)
        if book is not None:
            book.consumed(records[-1].offset + 1)
        self.last_progress = now
        self.batch_metrics.done(t0)
        return high

    def _unseen(self, st: PartitionState, records: Sequence[RecordLike]) -> Sequence[RecordLike]:
        """Without the records this process processed before (see :mod:`.partitions`)."""
        kept = self.plan.unseen(st, records)
        if (n := len(records) - len(kept)):
            self.skipped += n
            if not self.whole_stream:
                self.metrics.duplicate.inc(n)
            if not kept and st.book is not None:
                st.book.consumed(records[-1].offset + 1)
        return kept

    def _wake(self, pkey: int, now: float) -> None:
        """Records again after a pause (see :meth:`PartitionPlan.wake`)."""
        others = self.plan.wake(self.partitions, pkey)
        if others is not None:
            self.order.expect(others)
            self.woken_at = now

    def tick(self) -> None:
        """Housekeeping: alerts the stages can raise without more events (anomaly scores of the
        scoring windows that have ended), sent at once rather than at the next batch."""
        found = self.detector.tick()
        if found:
            self.dispatch.released([], found)

    def mark_idle(self, pkey: int) -> None:
        """The partition is caught up and quiet: stop waiting for it. When every partition is,
        release the whole buffer (a quiet system must not sit on its last alerts)."""
        st = self.partitions.get(pkey)
        if st is None or st.idle:
            return
        st.idle = True
        found, released = self.detector.idle_released(pkey)
        if self.archive is not None and self.plan.all_idle(self.partitions):
            # caught up: the archive writes what it holds now rather than after flush_seconds
            # (the offsets of a quiet stream are not held back, and no idle second is spent)
            self.archive.quiet()
        if self.plan.flush_when_idle(self.partitions, buffered=len(self.order),
                                     processed_since_flush=(
                                         self.detector.processed != self._flushed_at)):
            # not the events held ahead of the present: they would make what follows late
            more = self.detector.flush_released(present=True)
            released, found = [*released, *more.released], [*found, *more.alerts]
            self._flushed_at = self.detector.processed
            self.held_ahead.quiet(self.order, self._meta)
        if released or found:
            self.dispatch.released(released, found)

    def flush(self) -> None:
        """Shutdown: process everything buffered (and stages' micro-batches; drained only when
        their state is kept for the next start: :attr:`stages_go_on`)."""
        found, released = self.detector.flush_released(end_stages=not self.stages_go_on)
        self.dispatch.released(released, found)
        self._flushed_at = self.detector.processed

    def flush_at_stop(self, *, rereads: bool = True) -> bool:
        """A stop (shutdown, or a whole-stream reader's end): :meth:`flush` if
        :meth:`PartitionPlan.flush_at_stop` says so (``rereads``: the source can read again
        what is left); whether it did."""
        if self.plan.flush_at_stop(self.partitions, rereads=rereads):
            self.flush()
            return True
        return False
