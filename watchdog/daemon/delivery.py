"""Getting alerts (and dead letters) out: per-destination queues that retry and never drop.

:class:`Outbox` is one destination's queue and its worker task: batches go out in order; a
failed batch is retried with exponential backoff and full jitter until it succeeds, so a sink
that is down slows the daemon (backpressure through :attr:`Delivery.pending`) instead of
losing alerts or crashing it. :class:`Delivery` fans each alert out to every sink's outbox and,
once all of them accepted it, releases the Kafka offset that caused it and observes
``watchdog_event_to_alert_seconds``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from watchdog.alerts.model import Alert, now_rfc3339
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook
from watchdog.daemon.sinks.base import PartialDelivery, Sink
from watchdog.daemon.sinks.written import WrittenOnce

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: float = 0.2
    maximum: float = 30.0

    def delays(self) -> Callable[[], float]:
        """A fresh backoff sequence: exponential, full jitter (AWS architecture blog)."""
        current = self.initial

        def step() -> float:
            nonlocal current
            delay = random.uniform(current / 2, current)
            current = min(current * 2, self.maximum)
            return delay

        return step


class Outbox(Generic[T]):
    """A destination's queue; :meth:`run` is its worker task and never raises."""

    def __init__(
        self,
        name: str,
        send: Callable[[list[T]], Awaitable[None]],
        on_sent: Callable[[list[T]], None],
        metrics: Metrics,
        log: Any,
        *,
        batch_max: int = 500,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        progress: Callable[[], int] | None = None,
    ) -> None:
        self.name = name
        # items of the current send already delivered (a destination that takes them one by
        # one): when the timeout cuts a send short, those count (Sink.progress)
        self._progress = progress
        self._send = send
        self._on_sent = on_sent
        self._items: deque[T] = deque()
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self.batch_max = batch_max
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._errors = metrics.sink_errors.labels(name)
        self._sent = metrics.sink_sent.labels(name)
        self._latency = metrics.sink_latency.labels(name)
        self._log = log.bind(sink=name)
        self.failing = False
        # monotonic time since which items wait and none was accepted (None: progressing)
        self.stuck_since: float | None = None

    def put(self, item: T) -> None:
        self._items.append(item)
        self._empty.clear()
        self._wake.set()

    def __len__(self) -> int:
        return len(self._items)

    async def drained(self) -> None:
        await self._empty.wait()

    async def run(self) -> None:
        items = self._items
        while True:
            if not items:
                self._empty.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [items[i] for i in range(min(len(items), self.batch_max))]
            backoff = self.retry.delays()
            while batch:
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(self.timeout):
                        await self._send(batch)
                except PartialDelivery as err:
                    self._accept(batch[:err.accepted])
                    batch = batch[err.accepted:]
                    await self._failed(err.cause, backoff())
                except TimeoutError as err:
                    # a slow destination took part of the batch: that part is delivered, or
                    # every retry would send it again and never get past it (a livelock)
                    done = self._progress() if self._progress is not None else 0
                    why = TimeoutError(f"a send of {len(batch)} took over {self.timeout:g} s "
                                       f"({done} delivered)")
                    if done > 0:
                        self._accept(batch[:done])
                        batch = batch[done:]
                        backoff = self.retry.delays()  # it works, slowly: no long backoff
                    await self._failed(why if not str(err) else err, backoff())
                except Exception as err:  # any failure of the destination: retry, never drop
                    await self._failed(err, backoff())
                else:
                    self._latency.observe(time.perf_counter() - t0)
                    self._accept(batch)
                    batch = []
            if self.failing:
                self.failing = False
                self._log.info("sink_recovered")

    def stalled_for(self, now: float) -> float:
        """Seconds this destination has accepted nothing while items wait (0: progressing)."""
        since = self.stuck_since
        return 0.0 if since is None or not self._items else max(0.0, now - since)

    def _accept(self, batch: list[T]) -> None:
        if not batch:
            return
        self.stuck_since = None
        for _ in batch:
            self._items.popleft()
        self._sent.inc(len(batch))
        self._on_sent(batch)

    async def _failed(self, err: BaseException, delay: float) -> None:
        self._errors.inc()
        if self.stuck_since is None:
            self.stuck_since = time.monotonic()
        if not self.failing:  # log the first failure of a run of them, not every retry
            self._log.warning("sink_failed", error=type(err).__name__, detail=str(err)[:200],
                              pending=len(self._items))
        self.failing = True
        await asyncio.sleep(delay)


def _progress_of(sink: Sink) -> Callable[[], int] | None:
    """How far a sink that delivers alert by alert got in its current send, if it says."""
    if not hasattr(sink, "progress"):
        return None
    return lambda: int(getattr(sink, "progress", 0))


@dataclass(slots=True)
class Pending:
    """One alert on its way: to every sink, then it releases its source offset."""

    alert: Alert
    book: PartitionBook | None
    offset: int
    consumed_at: float  # time.monotonic() when the completing event was consumed
    remaining: int


class Delivery:
    """Fan-out of alerts to every sink's :class:`Outbox`."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        metrics: Metrics,
        log: Any,
        *,
        batch_max: int = 500,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.metrics = metrics
        self.outboxes = [
            Outbox(s.name, self._sender(s), self._sent, metrics, log, batch_max=batch_max,
                   timeout=s.timeout, retry=retry, progress=_progress_of(s))
            for s in self.sinks
        ]
        self.pending = 0  # alerts not yet accepted by every sink
        for s in self.sinks:  # the file sinks skip what they already hold: counted
            written = getattr(s, "written", None)
            if isinstance(written, WrittenOnce):
                written.on_skipped = metrics.sink_skipped.labels(s.name).inc  # at 0 from now
        # the archive (sinks.archive.DaemonArchive), beside the sinks: it holds the alert's
        # offset until written, without delaying the alert or watchdog_event_to_alert_seconds
        self.archive: Any = None
        self._observe = metrics.event_to_alert.observe
        self._stamp_at = 0.0
        self._stamp = ""

    @staticmethod
    def _sender(sink: Sink) -> Callable[[list[Pending]], Awaitable[None]]:
        async def send(batch: list[Pending]) -> None:
            await sink.send([p.alert for p in batch])

        return send

    def submit(self, alert: Alert, book: PartitionBook | None, offset: int,
               consumed_at: float) -> None:
        now = time.monotonic()
        if now - self._stamp_at >= 0.001:
            self._stamp_at, self._stamp = now, now_rfc3339()
        alert = msgspec.structs.replace(alert, detected_at=self._stamp)
        if self.archive is not None:
            self.archive.put_alert(alert, book, offset)
        if not self.outboxes:
            self._observe(now - consumed_at)
            return
        p = Pending(alert, book, offset, consumed_at, len(self.outboxes))
        if book is not None:
            book.add_inflight(offset)
        self.pending += 1
        for box in self.outboxes:
            box.put(p)

    def _sent(self, batch: list[Pending]) -> None:
        now = time.monotonic()
        observe = self._observe
        for p in batch:
            p.remaining -= 1
            if p.remaining == 0:
                self.pending -= 1
                observe(now - p.consumed_at)
                if p.book is not None:
                    p.book.done_inflight(p.offset)

    async def drained(self) -> None:
        for box in self.outboxes:
            await box.drained()
