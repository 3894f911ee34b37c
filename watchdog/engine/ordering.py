"""Event-time ordering: a bounded reorder buffer with per-partition watermarks.

Kafka keeps one account's events in order, but a dataset's events are spread over partitions
that may be hours apart while a backlog is read. Events are held until every live partition has
passed their time (minus the allowed lateness) and released in a total order that depends only
on the events themselves — (time, dataset, sequence, id) — never on arrival, so the daemon and
``watchdog replay`` process the same events in the same order and raise the same alerts.
Redelivered events (same ``event.id``, same content) are dropped here. An ``event.id`` reused
with different content is not a redelivery: it is processed and counted as a conflict
(:attr:`OrderStats.conflicts`). "Same content" is the decoded document: every field the
contract defines, equal as values (a timestamp as an instant), whatever the formatting, key
order or unknown fields of the bytes; it is remembered as a ``hash`` per id (64 bits, this
process: the remembered ids are not kept across restarts).

No single event can move the point before which others are late: an event more than
``future`` seconds ahead of the present (a host with a wrong clock, a test event dated 2099)
is held apart (:attr:`OrderStats.ahead`). The present is judged robustly, by the lower median of
the last few arrival times (overall, and on its partition): one or two stray events never move
it, a stream that really moved on (after a quiet spell) does within a few events. A held
event moves no watermark and no flush of a quiet system releases it; it joins the others once
the present reaches it (or the watermark passes it), or at the final flush. So it is processed
where replay, which orders by time, processes it. (An event less than ``future`` ahead is not
told from a partition that moved on: it may make up to ``future`` of later events late after an
idle flush; the very first event of all defines the present.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from heapq import heappop, heappush
from operator import itemgetter
from typing import Any

from watchdog.events import AccessEvent

_NEG_INF = float("-inf")
_INF = float("inf")
Released = list[tuple[AccessEvent, float]]
# (time, dataset, sequence, id, push number, event): the push number breaks the tie of two
# different events under one id (its first copy forgotten while pending, past
# max_remembered), which would otherwise compare the events themselves (TypeError)
_Entry = tuple[float, str, int, str, int, AccessEvent]
_TIME, _EVENT = itemgetter(0), itemgetter(5)
# arrival times a present is judged on: the lower median of five ignores two strays
_RECENT = 5
# what a push did (:attr:`Reorderer.last`)
QUEUED, DUPLICATE, LATE, AHEAD = 0, 1, 2, 3
# or'ed onto QUEUED, LATE or AHEAD: the event reused a known id with other content
CONFLICT = 4
# content hashes remembered for one id: its first version and a few conflicting ones (so that a
# redelivery of a conflicting version is a duplicate too); past that, each further version is
# processed as a conflict
_VERSIONS = 4
# an id's remembered content: the hash of its one version, or a tuple of the versions seen
_Content = int | tuple[int, ...]
_ANY = -1  # an id restored from a checkpoint: a duplicate whatever the content (hash() != -1)


def _median(times: Iterable[float]) -> float:
    """The lower median (-inf for none)."""
    s = sorted(times)
    return s[(len(s) - 1) // 2] if s else _NEG_INF


@dataclass(slots=True)
class OrderStats:
    released: int = 0
    duplicates: int = 0
    conflicts: int = 0  # a known event.id with different content: processed, not dropped
    late: int = 0  # arrived behind the watermark: processed at once, out of order
    ahead: int = 0  # arrived more than ``future`` ahead of the present: held apart


@dataclass(slots=True)
class Reorderer:
    lateness: float = 300.0  # seconds of disorder tolerated within one partition
    dedupe_horizon: float = 3600.0  # how long (event time) a released id is remembered, at least
    max_remembered: int = 1_000_000  # and at most about this many (a burst must not grow memory)
    # Release only once the oldest pending event is this far behind the watermark: replay
    # processes events in batches of that much event time instead of one call per event; the
    # daemon (0) releases each event as soon as it may. The order is the same either way.
    release_step: float = 0.0
    # how far ahead of the present (seconds of event time) an event may be and still move the
    # watermark; further ahead, it is held apart until the present comes (see module doc)
    future: float = 3600.0
    max_ahead: int = 100_000  # events held ahead at most
    stats: OrderStats = field(default_factory=OrderStats)
    # Pending entries: a sorted run per partition (Kafka keeps a partition's records in order,
    # and a replayed file is in time order: an entry later than its run's last is appended,
    # and popped in O(1)) and a heap for the others (disorder within a partition). A release
    # takes what is due from each and sorts it, which merges sorted runs in one linear pass:
    # the same total order as one heap of everything, with far fewer comparisons.
    _runs: dict[int, deque[_Entry]] = field(default_factory=dict)
    _heap: list[_Entry] = field(default_factory=list)
    _oldest: float = _INF  # the earliest time pending (inf: none)
    # ids pending or released recently with their content's hash, in two generations: an id is
    # remembered for one to two dedupe horizons (event time) and forgetting is dropping a whole
    # dict, not one id at a time
    _seen: dict[str, _Content] = field(default_factory=dict)
    _seen_old: dict[str, _Content] = field(default_factory=dict)
    _generation_ends: float = _NEG_INF
    _high: dict[int, float] = field(default_factory=dict)  # partition -> max event time seen
    _released_upto: float = _NEG_INF
    _upto: float = _NEG_INF  # the watermark, kept up to date with _high
    _pushes: int = 0
    # what the last push did: QUEUED, DUPLICATE, LATE or AHEAD, with CONFLICT or'ed on when
    # it reused a known id with other content
    last: int = QUEUED
    # events held apart (see ``future``), a heap of (entry, partition); the earliest time
    _ahead: list[tuple[_Entry, int]] = field(default_factory=list)
    _ahead_min: float = _INF
    # the latest arrival times (duplicates and late events aside), overall and per partition
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=_RECENT))
    _recent_p: dict[int, deque[float]] = field(default_factory=dict)

    def watermark(self) -> float:
        """Events at or before this time may be released."""
        if not self._high:
            return _NEG_INF
        return min(self._high.values()) - self.lateness

    def push(self, ev: AccessEvent, t: float, partition: int = 0) -> Released:
        # runs for every event: attribute lookups are kept to the minimum
        e = ev.event
        eid = e.id
        seen = self._seen
        # the content as values: ``t`` stands for the timestamp (the instant; hashing the
        # datetime would cost as much again)
        content = hash((t, e, ev.user, ev.data, ev.destination, ev.source, ev.host))
        known = seen.get(eid)
        if known is None and self._seen_old:
            known = self._seen_old.get(eid)
        if known is None:
            seen[eid] = content
            flag = QUEUED
        elif known in (content, _ANY) or (isinstance(known, tuple) and content in known):
            self.stats.duplicates += 1
            self.last = DUPLICATE
            return []
        else:
            self._conflicting(eid, known, content)
            flag = CONFLICT
        recent_p = self._recent_p.get(partition)
        if recent_p is None:
            recent_p = self._recent_p[partition] = deque(maxlen=_RECENT)
        high = self._high
        hp = high.get(partition, _NEG_INF)
        future = self.future
        # (not one behind what was released: that is late, whatever the present)
        if t > hp + future and t >= self._released_upto and self._beyond(t, recent_p):
            out = self._hold(ev, t, partition, recent_p)
            self.last |= flag
            return out
        self._recent.append(t)
        recent_p.append(t)
        if t >= self._ahead_min:  # the present may have reached events held ahead
            self._promote(self._present(recent_p))
            hp = high.get(partition, _NEG_INF)
        if t > hp:
            high[partition] = t
            # the watermark moves only when a partition's high does
            upto = self._upto = (t if len(high) == 1 else min(high.values())) - self.lateness
        else:
            upto = self._upto
        if t < self._released_upto:
            # too late to be ordered: process now rather than lose it
            self.stats.late += 1
            self.stats.released += 1
            self.last = LATE | flag
            return [(ev, t)]
        self.last = flag  # QUEUED, or QUEUED | CONFLICT
        seq = e.sequence
        self._pushes = n = self._pushes + 1
        entry = (t, e.dataset or "", seq if seq.__class__ is int else -1, eid, n, ev)
        run = self._runs.get(partition)
        if run is None:
            run = self._runs[partition] = deque()
        if not run or t > run[-1][0]:  # a float comparison: cheaper than the tuples'
            run.append(entry)
        else:
            heappush(self._heap, entry)
        oldest = self._oldest
        if t < oldest:
            self._oldest = oldest = t
        if oldest > upto - self.release_step:
            return []  # the common case: nothing old enough yet
        return self._release(upto)

    @property
    def released_upto(self) -> float:
        """The latest event time released: an event before it is late."""
        return self._released_upto

    @property
    def conflict(self) -> bool:
        """The last push reused a known id with other content (processed, not dropped)."""
        return bool(self.last & CONFLICT)

    def _conflicting(self, eid: str, known: _Content, content: int) -> None:
        """``eid`` is known with other content: the event is processed (counted); its content
        is remembered too, so that its own redelivery is a duplicate."""
        self.stats.conflicts += 1
        versions = known if isinstance(known, tuple) else (known,)
        self._seen[eid] = (*versions, content) if len(versions) < _VERSIONS else versions

    def snapshot(self) -> dict[str, Any]:
        """For a checkpoint (:mod:`watchdog.engine.snapshot` says what, and why not more)."""
        return {"released_upto": self._released_upto, "recent": list(self._recent),
                "ahead": [(entry[0], p, entry[5]) for entry, p in self._ahead]}

    def restore(self, snap: dict[str, Any], done: Iterable[str]) -> None:
        """Into a fresh buffer; ``done``: ids to take as duplicates, whatever their content."""
        self._released_upto = snap["released_upto"]
        self._recent.extend(snap["recent"])
        ahead = snap["ahead"]
        self._seen.update(dict.fromkeys([*done, *(ev.event.id for _, _, ev in ahead)], _ANY))
        for t, p, ev in ahead:
            heappush(self._ahead, (self._entry(ev, t), p))
        self._ahead_min = self._ahead[0][0][0] if self._ahead else _INF

    def remembers(self, eid: str) -> bool:
        return eid in self._seen or eid in self._seen_old

    def expect(self, partitions: set[int]) -> None:
        """These partitions hold the watermark back even before their first event (until idle):
        after an assignment, a partition whose first fetch is slow must not see the others'
        events released ahead of its own."""
        for p in partitions:
            self._high.setdefault(p, _NEG_INF)
        self._upto = self.watermark()

    def assign(self, partitions: set[int]) -> None:
        """Only these partitions hold the watermark back (after a rebalance)."""
        for p in list(self._high):
            if p not in partitions:
                del self._high[p]
        self._upto = self.watermark()

    def idle(self, partition: int) -> Released:
        """A caught-up partition with nothing new: stop waiting for it."""
        self._high.pop(partition, None)
        self._upto = self.watermark()
        return self._release(self._upto) if self._high else []

    def flush(self) -> Released:
        """Release everything, held events too (end of a replay, shutdown)."""
        return self._release(float("inf"))

    def flush_present(self) -> Released:
        """Release everything up to the present, not the events held ahead of it (a quiet
        system, every partition idle: it must not sit on its last alerts, nor let a stray
        event dated ahead make everything after the pause late)."""
        latest = max((run[-1][0] for run in self._runs.values() if run), default=_NEG_INF)
        if self._heap:
            latest = max(latest, max(entry[0] for entry in self._heap))
        return self._release(latest)

    def held(self) -> int:
        """Events held ahead of the present (see ``future``)."""
        return len(self._ahead)

    def __len__(self) -> int:
        """Events waiting for the watermark (not those held ahead: :meth:`held`)."""
        return sum(map(len, self._runs.values())) + len(self._heap)

    def present(self) -> float:
        """The present as judged on recent arrivals overall (-inf before any)."""
        return _median(self._recent)

    def present_at(self, partition: int) -> float:
        """The present as judged for an event of ``partition`` (see :meth:`_present`)."""
        recent_p = self._recent_p.get(partition)
        return self.present() if recent_p is None else self._present(recent_p)

    def _present(self, recent_p: deque[float]) -> float:
        """The present, judged on recent arrivals: no one or two strays move it. A partition's
        own arrivals count once there are enough of them (a backlog's partitions may be days
        apart: the one ahead is not wrong)."""
        present = _median(self._recent)
        if len(recent_p) == _RECENT:
            return max(present, _median(recent_p))
        return present

    def _beyond(self, t: float, recent_p: deque[float]) -> bool:
        """``t`` is further than ``future`` ahead of the present (none yet: it is the present)."""
        if not self._recent:
            return False
        return t > self._present(recent_p) + self.future

    def _hold(self, ev: AccessEvent, t: float, partition: int, recent_p: deque[float]) -> Released:
        heappush(self._ahead, (self._entry(ev, t), partition))
        self._ahead_min = self._ahead[0][0][0]
        self.stats.ahead += 1
        self.last = AHEAD
        if len(self._ahead) > self.max_ahead:
            # a flood, not a stray: the earliest held joins the others (memory stays bounded)
            self._promote(self._ahead_min)
        self._recent.append(t)
        recent_p.append(t)
        # its partition was heard from: it holds the watermark back (until it idles), or the
        # others' events could pass what it sends next, behind this one
        if partition not in self._high:
            self._high[partition] = _NEG_INF
            self._upto = _NEG_INF
        # a stream that really moved on (most recent arrivals ahead): the present follows it
        self._promote(self._present(recent_p))
        if self._oldest > self._upto - self.release_step:
            return []
        return self._release(self._upto)

    def _entry(self, ev: AccessEvent, t: float) -> _Entry:
        e, seq, self._pushes = ev.event, ev.event.sequence, self._pushes + 1
        return t, e.dataset or "", seq if seq.__class__ is int else -1, e.id, self._pushes, ev

    def _promote(self, upto: float) -> None:
        """Held events at or before ``upto`` join the others (in the total order)."""
        ahead = self._ahead
        high = self._high
        moved = False
        while ahead and ahead[0][0][0] <= upto:
            entry, p = heappop(ahead)
            t = entry[0]
            heappush(self._heap, entry)
            if t < self._oldest:
                self._oldest = t
            if p in high and t > high[p]:  # (not for a partition idle or revoked since)
                high[p] = t
                moved = True
        self._ahead_min = ahead[0][0][0] if ahead else _INF
        if moved:
            self._upto = self.watermark()

    def _release(self, upto: float) -> Released:
        if self._ahead_min <= upto:  # the watermark passed them: they are not ahead
            self._promote(upto)
        if self._oldest > upto:
            return []
        runs, heap = self._runs, self._heap
        if len(runs) == 1 and not heap:
            # one partition, in order (replay; a one-partition stream): nothing to merge
            (run,) = runs.values()
            out: Released = []
            append, popleft = out.append, run.popleft
            while run and run[0][0] <= upto:
                t, _, _, _, _, ev = popleft()
                append((ev, t))
            self._oldest = run[0][0] if run else _INF
            if not out:
                return out
        else:
            out = self._merge(upto)
            if not out:
                return out
            t = out[-1][1]
        self.stats.released += len(out)
        if t > self._released_upto:
            self._released_upto = t
        seen, half = self._seen, self.max_remembered // 2
        # a new generation copies the pending ids: only once at least as many were added since
        # the last one (a backlog may hold many events for hours), so the copy costs O(1) each
        if t >= self._generation_ends or len(seen) > half:  # before counting what is pending
            pending = len(self)
            if ((t >= self._generation_ends or len(seen) - pending > half)
                    and len(seen) >= 2 * pending):
                self._next_generation()
        return out

    def _merge(self, upto: float) -> Released:
        """Take what is due from every run and the heap, in the total order."""
        due: list[_Entry] = []
        take = due.append
        sources = 0  # sorted sequences in ``due``
        oldest = _INF
        for run in self._runs.values():
            if run and run[0][0] <= upto:
                sources += 1
                popleft = run.popleft
                while run and run[0][0] <= upto:
                    take(popleft())
            if run and run[0][0] < oldest:
                oldest = run[0][0]
        heap = self._heap
        if heap and heap[0][0] <= upto:
            sources += 1
            while heap and heap[0][0] <= upto:
                take(heappop(heap))
        if heap and heap[0][0] < oldest:
            oldest = heap[0][0]
        self._oldest = oldest
        if sources > 1:
            due.sort()  # sorted runs: the sort merges them
        # (event, time) pairs, built in C: the daemon releases a few events per call
        return list(zip(map(_EVENT, due), map(_TIME, due), strict=True))

    def _next_generation(self) -> None:
        old = self._seen_old = self._seen
        # ids still pending must stay known while they wait (a backlog may hold them long)
        pending = [entry[3] for run in self._runs.values() for entry in run]
        pending.extend(entry[3] for entry in self._heap)
        pending.extend(entry[3] for entry, _ in self._ahead)
        self._seen = {eid: old[eid] for eid in pending if eid in old}
        self._generation_ends = self._released_upto + self.dedupe_horizon
