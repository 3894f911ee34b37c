"""Detector: the ordering buffer, the rule engine and any further stages, in one object.

Both ``watchdog replay`` and the daemon push decoded events into a Detector and get alerts
back; only where events come from and where alerts go differ.

An event that reuses a known ``event.id`` with different content (:class:`Reorderer`) is
processed like any other; its alerts' ids also depend on its content (:func:`variant`), so that
they are told from those of the first version (``alert_id`` derives from the event id), the
same in replay and the daemon.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

import msgspec

from watchdog.alerts.model import Alert
from watchdog.engine.engine import ALL, ALONE, IN_ORDER, Engine, Known
from watchdog.engine.ordering import (
    AHEAD,
    CONFLICT,
    DUPLICATE,
    LATE,
    QUEUED,
    Released,
    Reorderer,
)
from watchdog.events import AccessEvent


class Pushed(NamedTuple):
    """What one :meth:`Detector.push` did."""

    alerts: Sequence[Alert]  # raised by this push: on the event's arrival and by what it released
    released: Sequence[tuple[AccessEvent, float]]  # events it released to the rules, in order
    # what the reorder buffer did with the event: QUEUED, DUPLICATE (same id, same content:
    # dropped), LATE (processed at once, out of order) or AHEAD (held apart)
    outcome: int
    # the event reused a known event.id with different content: processed, not dropped
    conflict: bool = False

    @property
    def duplicate(self) -> bool:
        return self.outcome == DUPLICATE


class Flushed(NamedTuple):
    """What :meth:`Detector.idle` or a flush did: the alerts raised, the events released."""

    alerts: list[Alert]
    released: Released


# a push that raised and released nothing (most of them) returns one of these: no allocation
_NOTHING = {o: Pushed((), (), o) for o in (QUEUED, DUPLICATE, LATE, AHEAD)}
_FAULTED: Known = (None, (), -1)  # an event whose processing on arrival raised (by identity)


def variant(ev: AccessEvent) -> str:
    """A stable digest of an event's content (its canonical JSON): part of the alert key of an
    event that reused a known id, so that its alerts are not taken for the first version's."""
    return hashlib.blake2b(msgspec.json.encode(ev), digest_size=6).hexdigest()


class Stage(Protocol):
    """A stage after the rules (e.g. anomaly scoring): sees every event in event-time order.

    ``observe`` may buffer (micro-batches) and return alerts later; ``flush`` returns what is
    buffered. Both are pure with respect to I/O. A stage may also have ``drain() -> list[Alert]``:
    what is due without waiting for more events (see :meth:`Detector.tick`), and
    ``observe_many(released) -> list[Alert]``: ``observe`` of a whole released list at once
    (after the rules have seen it), which the detector then calls instead.
    """

    def observe(self, ev: AccessEvent, t: float) -> list[Alert]: ...

    def flush(self) -> list[Alert]: ...


# the most events one ``observe_many`` call gets of what hold_stages kept: a stage that raises
# on a list loses that list. The daemon's default poll (kafka.max_poll_records), so a default
# batch is one list; lists of 512 and of 2,048 measured ~3% slower than whole batches of
# ~3,800 (bench_model_share, 8 rounds each: within its noise, and still 75-81% of rules-only)
STAGE_LIST = 2048


class Detector:
    def __init__(
        self,
        engine: Engine,
        reorderer: Reorderer | None = None,
        stages: Sequence[Stage] = (),
        *,
        early: bool = False,
        rules: bool = True,
        hold_stages: bool = False,
    ) -> None:
        """``early``: run the rules that judge an event alone as soon as it is pushed, and only
        the ordered rules (``Rule.ordered``; obligations too) when the buffer releases it. The
        same alerts, most of them ``lateness`` sooner (the daemon); without it every rule runs
        on release, so alerts come out in event-time order (replay). ``rules=False``: the stages
        only (a service that runs the anomaly model alone). ``hold_stages`` (the daemon): what
        the pushes release reaches the stages that take whole lists (``observe_many``) at
        :meth:`release_stages` (the end of a consumed batch), or at any other call that
        releases (tick, idle, flush), not push by push: see :meth:`release_stages`."""
        self.engine = engine
        self.rules = rules
        self.early = early  # may change between pushes (the daemon turns it off in a backlog)
        # early: what the engine looked up on arrival, by event object (two versions of one id
        # may be pending), until the release
        self._known: dict[int, Known] = {}
        # events pending that reused a known id with other content (by object): their variant
        self._variants: dict[int, str] = {}
        # not ``reorderer or ...``: an empty Reorderer is falsy (it has __len__)
        self.order = reorderer if reorderer is not None else Reorderer()
        self.stages = list(stages)
        self._each = [s for s in self.stages if not hasattr(s, "observe_many")]
        self._many = [(type(s).__name__, s.observe_many) for s in self.stages
                      if hasattr(s, "observe_many")]
        # stages that weigh the rules' alerts (the anomaly stage's person-level risk)
        self._alerts_to = [(type(s).__name__, s.observe_alerts) for s in self.stages
                           if hasattr(s, "observe_alerts")]
        self.processed = 0
        # an event whose processing raised (:mod:`watchdog.engine.faults`): handed here and
        # skipped, so that one event cannot stop detection; None: the error propagates
        self.on_fault: Callable[[AccessEvent, Exception], None] | None = None
        # a stage's call over a whole released list that raised (a bug in the stage): handed
        # here with the stage's name and the number of events, and the list's rule alerts kept;
        # the stage goes on with the next list. None: the error propagates
        self.on_stage_fault: Callable[[str, int, Exception], None] | None = None
        # hold_stages: released events waiting for the ``observe_many`` stages (None: each
        # release goes to them right after the rules)
        self._held: Released | None = [] if hold_stages else None

    def release_stages(self) -> list[Alert]:
        """Hand the events held for the stages (``hold_stages``) to them, in release order;
        their alerts. The rules saw each event, and their alerts went to ``observe_alerts``, at
        its release (the risk ledger queues those by event time, so they may come before their
        events); the stages' output does not depend on how the events are cut into lists. Why
        hold: the daemon releases a few events per push, and between two such lists the rules'
        work pushed the stage's own state out of the CPU's caches; a consumed batch at once is
        9% more events per CPU-second with the model (docs/anomaly-evaluation.md)."""
        held = self._held
        if not held:
            return []
        self._held = []
        # in lists of at most STAGE_LIST: a stage's bug loses one such list, not the batch
        alerts: list[Alert] = []
        for i in range(0, len(held), STAGE_LIST):
            alerts.extend(self._observe_many(held[i:i + STAGE_LIST]))
        return alerts

    def _observe_many(self, released: Released) -> list[Alert]:
        alerts: list[Alert] = []
        for name, observe_many in self._many:
            try:
                alerts.extend(observe_many(released))
            except Exception as err:
                self._stage_failed(name, len(released), err)
        return alerts

    def horizon(self) -> float:
        """The longest span of event time any window needs (seconds)."""
        th = self.engine.policy.thresholds
        return max(3600.0, th.reidentification_window_minutes * 60.0,
                   th.source_silence_minutes * 60.0) + self.order.lateness

    def push(self, ev: AccessEvent, t: float, partition: int = 0) -> Pushed:
        order = self.order
        released = order.push(ev, t, partition)
        last = order.last
        if last & CONFLICT:
            return self._conflict(ev, t, released, last & ~CONFLICT)
        if not self.early:
            if released:
                return Pushed(self._run(released), released, last)
            return _NOTHING[last]
        alerts = self._arrived(ev, t, None) if last != DUPLICATE else []
        if released:
            alerts.extend(self._run(released))
        elif not alerts:
            return _NOTHING[last]
        return Pushed(alerts, released, last)

    def _conflict(self, ev: AccessEvent, t: float, released: Released, last: int) -> Pushed:
        """The push of an event that reused a known id with other content (rare): processed
        with its variant (released already if late, else when the buffer releases it)."""
        alerts: list[Alert] = []
        if self.rules:  # (a service of the stages alone runs no rule: nothing to tell apart)
            v = variant(ev)
            if self.early:
                alerts = self._arrived(ev, t, v)
            self._variants[id(ev)] = v
        if released:
            alerts.extend(self._run(released))
        return Pushed(alerts, released, last, True)

    def _arrived(self, ev: AccessEvent, t: float, v: str | None) -> list[Alert]:
        """The rules that judge an event alone, on its arrival (``early``)."""
        engine = self.engine
        try:
            self._known[id(ev)] = known = engine.known(ev, t)
            alerts = (engine.process(ev, t, ALONE, known) if v is None
                      else engine.process(ev, t, ALONE, known, v))
        except Exception as err:
            if self.on_fault is None:
                raise
            self._known[id(ev)] = _FAULTED  # not processed again at its release
            self.on_fault(ev, err)
            return []
        if alerts:
            for name, observe_alerts in self._alerts_to:
                try:
                    observe_alerts(alerts)
                except Exception as err:
                    self._stage_failed(name, 1, err)
        return alerts

    def _stage_failed(self, stage: str, events: int, err: Exception) -> None:
        if self.on_stage_fault is None:
            raise err
        self.on_stage_fault(stage, events, err)

    def idle(self, partition: int) -> list[Alert]:
        return self.idle_released(partition).alerts

    def flush(self) -> list[Alert]:
        """Everything, events held ahead of the present too (end of a replay, shutdown)."""
        return self.flush_released().alerts

    def flush_present(self) -> list[Alert]:
        """Everything up to the present (every partition idle): not the events held ahead of
        it (:meth:`Reorderer.flush_present`); the stages drained, not flushed (more may come)."""
        return self.flush_released(present=True).alerts

    def idle_released(self, partition: int) -> Flushed:
        """:meth:`idle`, with the events it released (the daemon releases their records)."""
        released = self.order.idle(partition)
        return Flushed(self._run(released) + self.release_stages(), released)

    def flush_released(self, *, present: bool = False, end_stages: bool = True) -> Flushed:
        """:meth:`flush` (``present``: :meth:`flush_present`), with the events it released.
        ``end_stages`` False: the stages are drained, not flushed, even by a full flush (a
        shutdown whose stages' state is kept for the next start, which goes on with it)."""
        order = self.order
        released = order.flush_present() if present else order.flush()
        alerts = self._run(released) + self.release_stages()
        for stage in self.stages:
            # a quiet system's pause is not the end of the input: a stage that can (``drain``)
            # raises what event time has made due, no more (closing its open windows early,
            # as ``flush`` does, would score them without the events still to come: live
            # would differ from replay wherever the daemon happened to be idle)
            end = getattr(stage, "drain", None) if present or not end_stages else None
            try:
                alerts.extend(stage.flush() if end is None else end())
            except Exception as err:
                self._stage_failed(type(stage).__name__, 0, err)
        return Flushed(alerts, released)

    def tick(self) -> list[Alert]:
        """What the stages can raise now without more events (the daemon calls this every
        housekeeping tick; what they raise depends on event time only, not on when)."""
        alerts = self.release_stages()
        for stage in self.stages:
            drain = getattr(stage, "drain", None)
            if drain is not None:
                try:
                    alerts.extend(drain())
                except Exception as err:
                    self._stage_failed(type(stage).__name__, 0, err)
        return alerts

    def _run(self, released: Released) -> list[Alert]:
        alerts: list[Alert] = []
        process = self.engine.process
        stages = self._each
        known = self._known
        variants = self._variants
        rules = self.rules
        found: list[Alert] | None
        for ev, t in released:
            try:  # (free unless raised)
                if not rules:
                    found = None
                elif variants and id(ev) in variants:
                    k = known.pop(id(ev), None)
                    v = variants.pop(id(ev))
                    if k is _FAULTED:
                        continue  # failed on arrival, and said so
                    found = process(ev, t, ALL, None, v) if k is None else process(
                        ev, t, IN_ORDER, k, v)
                elif known:  # some were judged on arrival: those get only the ordered rules
                    k = known.pop(id(ev), None)
                    if k is _FAULTED:
                        continue
                    found = process(ev, t) if k is None else process(ev, t, IN_ORDER, k)
                else:
                    found = process(ev, t)
                if found:
                    alerts.extend(found)
                for stage in stages:
                    more = stage.observe(ev, t)
                    if more:
                        alerts.extend(more)
            except Exception as err:
                if self.on_fault is None:
                    raise
                self.on_fault(ev, err)
        if alerts:  # before the stages score the windows these events fall in
            for name, observe_alerts in self._alerts_to:
                try:
                    observe_alerts(alerts)
                except Exception as err:
                    self._stage_failed(name, len(released), err)
        held = self._held
        if held is not None:  # (hold_stages: until release_stages)
            held.extend(released)
        else:
            alerts.extend(self._observe_many(released))
        # (the rules forget idle window state themselves, on event time: not here, where how
        # many events a call releases differs between replay and the daemon)
        self.processed += len(released)
        return alerts
