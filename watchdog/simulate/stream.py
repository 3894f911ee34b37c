"""The event stream: every source merged in event-time order, lazily.

Sources are generators already in time order: the day's sessions (started when their day
begins), the batch jobs, and the planned events (injected and benign). A heap holds one
pending event per live source, so memory follows the number of concurrent sessions, never
the number of events. At emission each event gets its dataset's next ``event.sequence``
and, unless planned, its id; a planned event may skip sequence numbers (``log_gap``), and
silences (``log_gap``) drop a dataset's unplanned events for a while.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any

from watchdog.simulate.catalog import DATASETS
from watchdog.simulate.clock import Day
from watchdog.simulate.ids import MASK, ODD, EventIds, derive

Event = tuple[int, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Silence:
    """Drop ``dataset``'s unplanned events in [start, end), and every unplanned event in
    [quiet_from, quiet_to), so that the planned event at ``quiet_to`` is the first that
    shows the silence."""

    dataset: str
    start: int
    end: int
    quiet_from: int
    quiet_to: int


def merge(seed: int, days: list[Day], plan_day: Callable[[Day], list[Iterator[Event]]],
          background: list[Iterator[Event]], planned: list[Event],
          seq_skips: dict[str, int], silences: list[Silence],
          progress: Callable[[int, int], None] | None = None) -> Iterator[dict[str, Any]]:
    key = EventIds(seed).key
    prefix = {d.name: d.id_prefix for d in DATASETS}
    seq = {d.name: 1_000_000 + derive(seed, "sequence", d.name) % 9_000_000 for d in DATASETS}
    tick = count()
    heap: list[tuple[int, int, Any, Any]] = []
    planned_src = iter(planned)
    for i, day in enumerate(days):  # day markers sort before any event at the same instant
        heap.append((day.start, i - len(days) - 1, None, day))

    def push(src: Iterator[Event]) -> None:
        for ts, ev in src:
            heap.append((ts, next(tick), ev, src))
            break

    for src in [*background, planned_src]:
        push(src)
    heapq.heapify(heap)
    heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
    sil = sorted(silences, key=lambda s: s.start)
    si = 0
    next_sil = sil[0].start if sil else 1 << 62
    n_clean = 0
    emitted = 0
    while heap:
        ts, _, ev, src = heap[0]
        if ev is None:  # a day begins: start its sessions
            heappop(heap)
            for g in plan_day(src):
                for t2, ev2 in g:
                    heappush(heap, (t2, next(tick), ev2, g))
                    break
            continue
        nxt = next(src, None)
        if nxt is None:
            heappop(heap)
        else:
            heapreplace(heap, (nxt[0], next(tick), nxt[1], src))
        e = ev["event"]
        ds = e["dataset"]
        if src is planned_src:
            skip = seq_skips.get(e["id"], 0)
        else:
            skip = 0
            if ts >= next_sil:
                while si < len(sil) and sil[si].end <= ts:
                    si += 1
                if si < len(sil):
                    s = sil[si]
                    next_sil = s.start
                    if s.start <= ts and (ds == s.dataset or s.quiet_from <= ts < s.quiet_to):
                        continue
                else:
                    next_sil = 1 << 62
            z = ((n_clean + key) * ODD) & MASK  # ids.make, inlined
            e["id"] = f"{prefix[ds]}-{z ^ (z >> 29):016x}"
            n_clean += 1
        seq[ds] += 1 + skip
        e["sequence"] = seq[ds]
        emitted += 1
        if progress is not None and not emitted & 0x3FFF:
            progress(emitted, ts)
        yield ev
    if progress is not None:
        progress(emitted, -1)
