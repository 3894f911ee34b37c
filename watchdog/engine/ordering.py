"""Event-time ordering: a bounded reorder buffer with per-partition watermarks.

Kafka keeps one account's events in order, but a dataset's events are spread over partitions
that may be hours apart while a backlog is read. Events are held until every live partition has
passed their time (minus the allowed lateness) and released in a total order that depends only
on the events themselves — (time, dataset, sequence, id) — never on arrival, so the daemon and
``watchdog replay`` process the same events in the same order and raise the same alerts.
Redelivered events (same ``event.id``) are dropped here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from heapq import heappop, heappush
from operator import itemgetter

from watchdog.events import AccessEvent

_NEG_INF = float("-inf")
_INF = float("inf")
Released = list[tuple[AccessEvent, float]]
# (time, dataset, sequence, id, push number, event): the push number breaks the tie of two
# different events under one id (its first copy forgotten while pending, past
# max_remembered), which would otherwise compare the events themselves (TypeError)
_Entry = tuple[float, str, int, str, int, AccessEvent]
_TIME, _EVENT = itemgetter(0), itemgetter(5)


@dataclass(slots=True)
class OrderStats:
    released: int = 0
    duplicates: int = 0
    late: int = 0  # arrived behind the watermark: processed at once, out of order


@dataclass(slots=True)
class Reorderer:
    lateness: float = 300.0  # seconds of disorder tolerated within one partition
    dedupe_horizon: float = 3600.0  # how long (event time) a released id is remembered, at least
    max_remembered: int = 1_000_000  # and at most about this many (a burst must not grow memory)
    # Release only once the oldest pending event is this far behind the watermark: replay
    # processes events in batches of that much event time instead of one call per event; the
    # daemon (0) releases each event as soon as it may. The order is the same either way.
    release_step: float = 0.0
    stats: OrderStats = field(default_factory=OrderStats)
    # Pending entries: a sorted run per partition (Kafka keeps a partition's records in order,
    # and a replayed file is in time order: an entry later than its run's last is appended,
    # and popped in O(1)) and a heap for the others (disorder within a partition). A release
    # takes what is due from each and sorts it, which merges sorted runs in one linear pass:
    # the same total order as one heap of everything, with far fewer comparisons.
    _runs: dict[int, deque[_Entry]] = field(default_factory=dict)
    _heap: list[_Entry] = field(default_factory=list)
    _oldest: float = _INF  # the earliest time pending (inf: none)
    # ids pending or released recently, in two generations: an id is remembered for one to two
    # dedupe horizons (event time) and forgetting is dropping a whole set, not one id at a time
    _seen: set[str] = field(default_factory=set)
    _seen_old: set[str] = field(default_factory=set)
    _generation_ends: float = _NEG_INF
    _high: dict[int, float] = field(default_factory=dict)  # partition -> max event time seen
    _released_upto: float = _NEG_INF
    _upto: float = _NEG_INF  # the watermark, kept up to date with _high
    _pushes: int = 0

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
        if eid in seen or eid in self._seen_old:
            self.stats.duplicates += 1
            return []
        seen.add(eid)
        high = self._high
        if t > high.get(partition, _NEG_INF):
            high[partition] = t
            # the watermark moves only when a partition's high does
            upto = self._upto = (t if len(high) == 1 else min(high.values())) - self.lateness
        else:
            upto = self._upto
        if t < self._released_upto:
            # too late to be ordered: process now rather than lose it
            self.stats.late += 1
            self.stats.released += 1
            return [(ev, t)]
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
        """Release everything (end of a replay, shutdown)."""
        return self._release(float("inf"))

    def __len__(self) -> int:
        return sum(map(len, self._runs.values())) + len(self._heap)

    def _release(self, upto: float) -> Released:
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
        self._seen_old = self._seen
        # ids still pending must stay known while they wait (a backlog may hold them long)
        self._seen = {entry[3] for run in self._runs.values() for entry in run}
        self._seen.update(entry[3] for entry in self._heap)
        self._generation_ends = self._released_upto + self.dedupe_horizon
