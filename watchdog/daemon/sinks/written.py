"""What a file sink (JSONL, audit trail) wrote: each alert once, whatever the retries.

The writes (and fsyncs) of a file sink run in a worker thread, one at a time. The outbox bounds
a send (:attr:`~watchdog.daemon.sinks.base.Sink.timeout`) and retries it, but a timeout cancels
the wait, not the thread, which may still write the batch. So :meth:`WrittenOnce.run` first
waits for the thread of the send before (it timed out), and the thread itself remembers the
ids it wrote: the retry finds them held and skips them, counted as delivered. At start the
sink seeds the ids of its file's last lines (:mod:`~watchdog.daemon.sinks.recent`): an alert
sent again after a restart is skipped too. Every skipped alert counts in
``watchdog_sink_skipped_total{sink}`` (:attr:`WrittenOnce.on_skipped`, set by the delivery).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable

from watchdog.daemon.sinks.recent import REMEMBER, RecentIds


class WrittenOnce:
    """The remembered ids of a file sink's appends, and its one write at a time. The ids are
    touched from the worker thread and the event loop alike: under a lock."""

    def __init__(self, limit: int = REMEMBER) -> None:
        self._ids = RecentIds(limit)
        self._guard = threading.Lock()
        self._writing: asyncio.Future[None] | None = None  # the thread of the last send
        # counts skipped alerts (watchdog_sink_skipped_total{sink}); None: not counted
        self.on_skipped: Callable[[int], None] | None = None

    def seed(self, keys: Iterable[str]) -> None:
        """Ids written before this process (the file's tail)."""
        with self._guard:
            self._ids.extend(keys)

    def holds(self, key: str) -> bool:
        with self._guard:
            return key in self._ids

    def wrote(self, keys: Iterable[str]) -> None:
        with self._guard:
            self._ids.extend(keys)

    def skipped(self, n: int) -> None:
        if n and self.on_skipped is not None:
            self.on_skipped(n)

    async def run(self, write: Callable[[], None]) -> None:
        """``write`` in a worker thread, after the thread of the write before has ended. A
        timeout (or cancel) of the caller leaves the thread running: the next run waits."""
        while self._writing is not None:  # another caller may start one while this waits
            await self.settle()
        job = asyncio.ensure_future(asyncio.to_thread(write))
        self._writing = job
        await asyncio.shield(job)

    async def settle(self) -> None:
        """Wait for the thread of an earlier write still running (its caller timed out)."""
        job = self._writing
        if job is not None:
            await asyncio.wait({job})
            if self._writing is job:
                self._writing = None
            if not job.cancelled():
                job.exception()  # retrieved: its caller already saw it or timed out

    def __len__(self) -> int:
        with self._guard:
            return len(self._ids)
