"""An in-memory source for tests: partitions with offsets and commits, no broker.

``feed(partition, values)`` appends records; :meth:`run` hands them to the pipeline in batches,
marks partitions idle when they have been drained for ``idle_after`` seconds, and "commits"
the pipeline's safe offsets into :attr:`committed` like the Kafka source does.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.base import Raw


class MemorySource:
    name = "memory"
    rereads = False  # its records live in this process only: a stop processes them

    def __init__(self, pipeline: Pipeline, partitions: int = 1, *, topic: str = "memory",
                 batch: int = 500, idle_after: float = 0.05, start: dict[int, int] | None = None,
                 resume: dict[int, int] | None = None, max_pending: int = 10_000) -> None:
        self.pipeline = pipeline
        self.max_pending = max_pending  # pause while this many alerts wait for sinks
        self.topic = topic
        self.batch = batch
        self.idle_after = idle_after
        self.partitions = partitions
        self._start = start or {}
        self.resume = resume or {}
        self.log: dict[int, list[bytes | None]] = {p: [] for p in range(partitions)}
        self._queue: dict[int, deque[Raw]] = {p: deque() for p in range(partitions)}
        self.committed: dict[int, int] = {}
        self.consumed = 0
        self.paused = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._last = {p: time.monotonic() for p in range(partitions)}
        self._beat = time.monotonic()

    def feed(self, partition: int, values: list[bytes | None]) -> None:
        log = self.log[partition]
        q = self._queue[partition]
        for v in values:
            q.append(Raw(v, len(log), partition))
            log.append(v)
        self._wake.set()

    async def start(self) -> None:
        """``start``: where reading begins (a seek); ``resume``: the committed offsets (records
        below them are re-read only to rebuild windows, as after a restart)."""
        for p in range(self.partitions):
            start = self._start.get(p, 0)
            self.pipeline.open_partition(p, self.resume.get(p, start), start=start,
                                         resume=self.resume.get(p, -1))
            q = self._queue[p]
            while q and q[0].offset < start:
                q.popleft()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def finish(self) -> None:
        self.commit()

    def alive(self, now: float) -> bool:
        return now - self._beat < 30.0

    @property
    def ready(self) -> bool:
        return True

    def commit(self) -> None:
        for p, book in self.pipeline.books.items():
            safe = book.safe()
            if safe > book.committed:
                book.committed = safe
                self.committed[p] = safe

    async def run(self) -> None:
        while not self._stopping:
            self._beat = now = time.monotonic()
            self.paused = self.pipeline.delivery.pending >= self.max_pending
            moved = False
            if not self.paused:
                for p, q in self._queue.items():
                    if not q:
                        if now - max(self._last[p], self.pipeline.woken_at) >= self.idle_after:
                            self.pipeline.mark_idle(p)
                        continue
                    recs = [q.popleft() for _ in range(min(self.batch, len(q)))]
                    self.pipeline.ingest(p, recs, self.topic)
                    self.consumed += len(recs)
                    self._last[p] = now
                    moved = True
            self.commit()
            if not moved:
                self._wake.clear()
                try:
                    async with asyncio.timeout(min(self.idle_after / 2, 0.05)):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(0)
