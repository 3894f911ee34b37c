"""Which offset of a partition it is safe to commit (at-least-once).

A consumed record holds its partition's commit back while its event waits in the reorder
buffer (not processed yet), and while an alert it completed, or its dead-letter copy, has not
been accepted by every sink. The safe offset is the lowest offset still held, or the next one
to consume when nothing is. Records arrive in offset order but leave the reorder buffer in
event-time order, so both sets are kept with lazy deletion: amortised O(1) per record.

A book belongs to one assignment of a partition: after a rebalance the partition gets a new
book, and acknowledgements that arrive for the old one (a stale origin) change nothing.
"""

from __future__ import annotations

import heapq
from collections import deque


class PartitionBook:
    __slots__ = ("_done", "_heap", "_held", "_inflight", "committed", "log", "next",
                 "partition")

    def __init__(self, partition: int, start: int) -> None:
        self.partition = partition
        self.next = start  # one past the last consumed offset
        self.committed = start
        self._held: deque[int] = deque()  # offsets of events in the reorder buffer (ascending)
        self._done: set[int] = set()  # held offsets whose events were released
        self._inflight: dict[int, int] = {}  # offset -> alerts/dead letters not yet accepted
        self._heap: list[int] = []
        # (offset, event id) of each record whose event left the buffer, when kept (an MQTT
        # stream with checkpoints: watchdog.daemon.checkpoint)
        self.log: list[tuple[int, str]] | None = None

    def consumed(self, upto: int) -> None:
        if upto > self.next:
            self.next = upto

    def hold(self, offset: int) -> None:
        """The record's event entered the reorder buffer."""
        self._held.append(offset)

    def release(self, offset: int, eid: str | None = None) -> None:
        """The record's event left the reorder buffer (processed or dropped); ``eid``: the
        event's id when processed (kept in :attr:`log` if it is kept)."""
        if eid is not None and self.log is not None:
            self.log.append((offset, eid))
        held = self._held
        if held and held[0] == offset:
            held.popleft()
        else:
            self._done.add(offset)

    def add_inflight(self, offset: int) -> None:
        n = self._inflight.get(offset)
        if n is None:
            heapq.heappush(self._heap, offset)
            self._inflight[offset] = 1
        else:
            self._inflight[offset] = n + 1

    def done_inflight(self, offset: int) -> None:
        n = self._inflight.get(offset)
        if n is None:
            return
        if n <= 1:
            del self._inflight[offset]
        else:
            self._inflight[offset] = n - 1

    def safe(self) -> int:
        """The offset to commit: every record below it is fully handled."""
        safe = self.unreleased()
        heap, inflight = self._heap, self._inflight
        while heap and heap[0] not in inflight:
            heapq.heappop(heap)
        if heap and heap[0] < safe:
            safe = heap[0]
        return safe

    def unreleased(self) -> int:
        """The lowest offset whose event is still in the reorder buffer (else the next one to
        consume): every record below it was processed or dropped."""
        held, done = self._held, self._done
        while held and held[0] in done:
            done.discard(held.popleft())
        return held[0] if held else self.next

    @property
    def inflight(self) -> bool:
        """An alert or dead letter of a record waits for a sink."""
        return bool(self._inflight)

    @property
    def pending(self) -> int:
        return len(self._held) - len(self._done) + len(self._inflight)
