"""The whole-stream reader: ``log_gap`` over every partition when the group splits them.

``log_gap`` judges a whole dataset (silences, sequence gaps), and a dataset's events are spread
over every partition of ``access-logs``: an instance that owns only some of them holds those
alerts back (:data:`~watchdog.daemon.pipeline.WHOLE_STREAM_RULES`). So, while its view is
partial, the instance that owns partition 0 in the main group also reads the topic in a group
of its own, ``<group>.whole-stream``. It is the only member there, so it is given every
partition: a second :class:`~watchdog.daemon.pipeline.Pipeline` (``whole_stream=True``) runs
only the whole-stream rules with a whole view, and sends their alerts through the same
delivery. The reader is a :class:`~.kafka.KafkaSource` (per-partition watermarks, windows
rebuilt from one horizon before the committed offsets, commits never past an undelivered
alert, alerts of re-read records suppressed), with these differences:

- The group's committed offsets say how far the whole-stream alerts were sent, whoever sent
  them: the reader commits there, and so does (:meth:`WholeStream.record`) an instance whose
  main source has the whole view, after each of its own commits (the group is empty then; a
  commit refused because a reader is in it is that reader's business). So a reader starts
  where the last whole view, of a reader or of a main pipeline, left off: it neither re-sends
  what a whole view sent nor skips what partial views held back. (A broker that keeps a
  group's departed members, like Tansu 0.6, refuses those records once a reader has been in
  the group: readers then start from their own last commit and may send alerts again.)
- Every assignment starts over: a fresh pipeline, every partition from the committed offset.
  During a handover the old and the new owner of partition 0 are briefly both in the group;
  each then has a partial view, holds its alerts back and commits nothing, so whoever ends up
  alone re-reads from the last commit made with a whole view and loses nothing.
- It counts no events and dead-letters nothing (the main pipeline does, for the same records);
  its alerts count in ``watchdog_alerts_total``, its lag in ``watchdog_whole_stream_lag``,
  and ``watchdog_whole_stream_reader`` is 1 while it runs.

:class:`WholeStream` starts and stops the reader from the main source's rebalance callback
(without blocking it: a task of its own does the work), stops it at shutdown (last commit),
and never lets it fail the daemon: a reader that fails is logged and started again.

A reader that stops processes its reorder buffer only if every partition is idle
(:meth:`WholeStream._flush`): else the buffer is left, its records uncommitted, for the next
whole view. Flushed, one partition's newest events would be judged without the other
partitions' events of the same minutes, not fetched yet (false ``log_gap``).

Left open: when the main view becomes whole again, the alerts held back by the partial views
that the reader had not yet sent when it stopped (its lag at that moment, and the events left
in its buffer: about ``lateness_seconds`` of event time) are not sent; nor are those of the
events that then reach the main pipeline late (judged on its partial view's state, they would
be false: see :attr:`.Pipeline.partial_view`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from watchdog.daemon.config import Config, in_group
from watchdog.daemon.delivery import Delivery
from watchdog.daemon.kafka_client import FINISH_STEP, client_kwargs
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import WHOLE_STREAM_RULES, Pipeline
from watchdog.daemon.sources.kafka import KafkaSource
from watchdog.engine.engine import Engine
from watchdog.policy.model import Policy
from watchdog.rules import RULE_CLASSES

GROUP_SUFFIX = ".whole-stream"
RETRY_SECONDS = 5.0  # after a reader that failed to start or stopped with an error
# after a refused record (a reader is in the group: it commits for itself), try again this
# much later, not at every commit of the main source
RECORD_BACKOFF_SECONDS = 30.0


class WholeStreamSource(KafkaSource):
    """A :class:`KafkaSource` that starts over on every assignment and commits only with the
    whole view (see the module docstring)."""

    name = "whole-stream"
    partial_consequence = ("another instance is still in the group (a handover): alerts are "
                           "held back and nothing is committed until it leaves")

    def __init__(
        self,
        cfg: Config,
        new_pipeline: Callable[[], Pipeline],
        metrics: Metrics,
        log: Any,
        *,
        congested: Callable[[], bool],
    ) -> None:
        super().__init__(cfg, new_pipeline(), metrics, log, congested=congested)
        self._new_pipeline = new_pipeline
        self.lag_gauge = metrics.whole_stream_lag
        self.lag_labels = lambda p: (self.topic, str(p))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # windows built on a partial view, or on a buffer cut by the rebalance, are not the
        # whole stream: start over from the committed offsets, every partition new
        self._drop(self.assigned)
        self.assigned = set()
        self.pipeline = self._new_pipeline()
        await super().on_partitions_assigned(assigned)

    async def _commit(self, c: Any) -> None:
        if self.pipeline.partial_view:
            return  # its held-back alerts are nobody's: the next whole view reads them again
        await super()._commit(c)


class WholeStream:
    """The whole-stream role of one instance: wanted while its main source owns partition 0
    with a partial view. :meth:`run` is its task; :meth:`on_view` and :meth:`record` are the
    main source's ``on_assigned`` and ``on_whole_commit``."""

    def __init__(
        self,
        cfg: Config,
        engine: Engine,
        delivery: Delivery,
        main: Pipeline,
        metrics: Metrics,
        log: Any,
        *,
        congested: Callable[[], bool] = lambda: False,
    ) -> None:
        self.cfg = in_group(cfg, GROUP_SUFFIX)
        self.group = self.cfg.kafka.group
        self.engine = engine
        self.delivery = delivery
        self.main = main
        self.metrics = metrics
        self.log = log.bind(group=self.group)
        self.congested = congested
        self.reader: WholeStreamSource | None = None
        self.starts = 0  # readers started (tests, logs)
        self._task: asyncio.Task[None] | None = None  # the reader's run()
        self._recorder: AIOKafkaConsumer | None = None  # commits to the group, not a member
        self._record_after = 0.0  # monotonic time before which record() does nothing
        self._want = False
        self._closing = False
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._done = asyncio.Event()  # run() returned

    @property
    def running(self) -> bool:
        return self.reader is not None

    # -- from the main source ---------------------------------------------------------------
    def on_view(self, source: KafkaSource) -> None:
        """After every assignment of the main source (inside its rebalance: only a flag)."""
        want = 0 in source.assigned and source.pipeline.partial_view
        if want != self._want:
            self._want = want
            self._wake.set()

    async def record(self, offsets: dict[int, int]) -> None:
        """The main source committed ``offsets`` with the whole view: its pipeline sent the
        whole-stream alerts below them, so a reader started later need not (bounded; a
        failure only means that reader sends some of them again)."""
        if self.reader is not None or not offsets or time.monotonic() < self._record_after:
            return  # this instance's reader is in the group: it commits for itself
        topic = self.cfg.topics.access_logs
        tps = {TopicPartition(topic, p): off for p, off in offsets.items()}
        try:
            async with asyncio.timeout(FINISH_STEP):
                c = self._recorder or await self._start_recorder()
                if not tps.keys() <= c.assignment():
                    c.assign(list(c.assignment() | tps.keys()))
                    c.pause(*c.assignment())  # it only commits: no prefetching of records
                await c.commit(tps)
        except Exception as err:  # in the main source's commit: never fail it
            # KafkaError, TimeoutError; CommitFailedError while a reader is in the group (and,
            # on brokers that keep a group's departed members, e.g. Tansu, after the first one)
            self._record_after = time.monotonic() + RECORD_BACKOFF_SECONDS
            self.log.debug("whole_view_commit_not_recorded", error=type(err).__name__,
                           retry_in=RECORD_BACKOFF_SECONDS)

    async def _start_recorder(self) -> AIOKafkaConsumer:
        c = AIOKafkaConsumer(group_id=self.group, enable_auto_commit=False,
                             **client_kwargs(self.cfg.kafka))
        try:
            await c.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await c.stop()
            raise
        self._recorder = c
        return c

    def set_policy(self, policy: Policy) -> None:
        """SIGHUP: the running reader's engine follows the main one (new readers copy it)."""
        if self.reader is not None:
            self.reader.pipeline.engine.set_policy(policy)

    # -- the role's task ------------------------------------------------------------------------
    async def run(self) -> None:
        """Start and stop the reader as wanted, until :meth:`stop`; never raises."""
        try:
            while not self._closing:
                await self._next_change()
                if self._closing:
                    break
                try:
                    await self._reconcile()
                except Exception as err:  # the reader is a helper: never fail the daemon
                    self.log.error("whole_stream_reader_failed", error=type(err).__name__,
                                   detail=str(err)[:200], retry_in=RETRY_SECONDS, exc_info=err)
                    await self._retire("failed")
                    await self._sleep(RETRY_SECONDS)
                    self._wake.set()
        finally:
            self._done.set()

    async def _next_change(self) -> None:
        """Until wanted and running differ, or the reader's loop ended on its own."""
        waits: set[asyncio.Future[Any]] = set()
        wake = asyncio.ensure_future(self._wake.wait())
        waits.add(wake)
        if self._task is not None:
            waits.add(self._task)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
        self._wake.clear()

    async def _reconcile(self) -> None:
        task = self._task
        if task is not None and task.done():  # the loop ended without being asked to
            err = None if task.cancelled() else task.exception()
            self.log.error("whole_stream_reader_stopped_unexpectedly",
                           error=type(err).__name__ if err else None, retry_in=RETRY_SECONDS)
            await self._retire("failed")
            await self._sleep(RETRY_SECONDS)
        if self._want and self.reader is None:
            await self._start()
        elif not self._want and self.reader is not None:
            await self._stop_reader()

    async def _start(self) -> None:
        reader = WholeStreamSource(self.cfg, self._new_pipeline, self.metrics, self.log,
                                   congested=self.congested)
        try:
            await reader.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await reader.finish()
            raise
        self.reader = reader
        self.starts += 1
        self._task = asyncio.create_task(reader.run(), name="source:whole-stream")
        self.metrics.whole_stream_reader.set(1)
        self.log.info("whole_stream_reader_started", topic=reader.topic,
                      why="this instance owns partition 0 with a partial view")

    def _new_pipeline(self) -> Pipeline:
        """A pipeline that runs only the whole-stream rules, over the main engine's state."""
        main = self.engine
        engine = Engine(main.policy, main.pseudonymize,
                        [cls() for cls in RULE_CLASSES if cls.id in WHOLE_STREAM_RULES])
        # the same directory, subjects and accounts (read, never written here), and the
        # obligations their records opened: the same alerts
        engine.share_state(main)
        engine.on_suppressed = main.on_suppressed
        return Pipeline(engine, self.delivery, self.main.dead_letters, self.metrics, self.log,
                        lateness=self.main.order.lateness, future=self.main.order.future,
                        alert_ids=self.main.alert_ids,
                        whole_stream=True)

    async def _stop_reader(self) -> None:
        """The role ends (partition 0 went elsewhere, or the main view is whole again)."""
        reader = self.reader
        if reader is None:
            return
        reader.stop()
        await self._wait_loop(FINISH_STEP)
        self._flush(reader)
        try:  # its alerts accepted first, so that the last commit covers them
            async with asyncio.timeout(FINISH_STEP):
                await self.delivery.drained()
        except TimeoutError:
            pass  # not committed: whoever reads next sends them again
        await self._retire("role ended")

    async def _retire(self, why: str) -> None:
        """Last commit (if a whole view), leave the group, forget the reader."""
        reader, task = self.reader, self._task
        self.reader = self._task = None
        self.metrics.whole_stream_reader.set(0)
        self.metrics.whole_stream_lag.clear()  # no stale series while another instance reads
        if task is not None:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
            if not task.cancelled():
                task.exception()  # retrieved (logged by _reconcile): no asyncio warning
        if reader is None:
            return
        try:
            await reader.finish()
        except Exception as err:
            self.log.warning("whole_stream_finish_failed", error=type(err).__name__)
        self.log.info("whole_stream_reader_stopped", why=why,
                      processed=reader.pipeline.detector.processed,
                      suppressed=reader.pipeline.suppressed)

    # -- shutdown (the service calls these in this order) ---------------------------------------
    def stop(self) -> None:
        """Stop consuming; no reader is started any more."""
        self._closing = True
        self._stopped.set()
        self._wake.set()
        if self.reader is not None:
            self.reader.stop()

    async def settle(self, within: float) -> None:
        """Wait for the reader's loop to end, then process what is buffered if every partition
        is idle (else it is read again by the next whole view: see :meth:`_flush`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._done.wait()
        if self.reader is not None:
            self.reader.stop()  # started while stop() was being called
            await self._wait_loop(within)
            self._flush(self.reader)

    async def finish(self) -> None:
        """Last commit and leave the group (bounded like the main source's); idempotent."""
        await self._retire("shutdown")

    async def close(self) -> None:
        """After the main source's last commit: disconnect everything; idempotent."""
        await self._retire("shutdown")
        c, self._recorder = self._recorder, None
        if c is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(FINISH_STEP):
                    await c.stop()

    # -- helpers ----------------------------------------------------------------------------------
    async def _wait_loop(self, within: float) -> None:
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=within)

    def _flush(self, reader: WholeStreamSource) -> None:
        """The reader stops (its role ended, or a shutdown): its buffer is processed only if
        every partition is idle (:meth:`PartitionPlan.flush_at_stop`, as the main pipeline's
        at a shutdown), else left, its records uncommitted, for the next whole view (a
        handover while the stream was produced: 7 false ``log_gap`` in 3 of 19 runs)."""
        pipeline = reader.pipeline
        buffered = len(pipeline.order)
        self.log.debug("whole_stream_stopping", buffered=buffered,
                       watermark=pipeline.order.watermark(), partitions=reader.positions())
        if not pipeline.flush_at_stop() and buffered:
            self.log.info("whole_stream_not_flushed", buffered=buffered,
                          consequence="read again by the next whole view, from the last commit")

    async def _sleep(self, seconds: float) -> None:
        """Sleep unless stopped meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopped.wait()
