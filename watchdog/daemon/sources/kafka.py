"""Access events from Kafka (``access-logs``), consumer group ``watchdog``.

- Partition numbers are the reorder buffer's partitions: per-partition watermarks. A partition
  that is caught up (lag 0) and has had no record for ``idle_after_seconds`` stops holding the
  watermark back.
- On assignment a partition new to this instance is re-read from one window horizon before
  its committed offset (:mod:`.kafka_rebuild`), so its windows are whole again; alerts
  completed by the re-read records were sent before and are suppressed by the pipeline, and
  those this process processed before are skipped. A partition kept across a rebalance
  carries on where it was (waited for again if it was idle). At the first assignment, a
  restored anomaly state may ask for an earlier start (:mod:`watchdog.daemon.model_state`).
  The rebalance listener's part is :mod:`.kafka_rebalance`.
- Offsets are committed (every ``commit_interval_seconds``, on revocation and at shutdown) up to
  what the pipeline says is safe: never past an event still in the reorder buffer or an alert
  not yet accepted by every sink.
- Backpressure: every partition is paused while too many alerts wait for sinks. When
  ``max_buffered_events`` wait in the reorder buffer (a backlog whose partitions are hours
  apart), the partitions ahead of the watermark are paused until the buffer has halved, so
  memory stays bounded while the partition behind catches up. ``getmany`` keeps being
  called, so the consumer stays in its group.
- The anomaly service of a split deployment reads each partition only below its follow limit
  (what the rules service committed: :mod:`..rules_follow`); at it, the partition is paused,
  what a fetch brought past it is held until it moves, and it goes idle as any other once
  nothing lies beyond it.
- An instance that owns only some partitions (a partial view) holds back the alerts of the
  rules that judge a whole dataset (``log_gap``); after every assignment ``on_assigned`` is
  told, so that the owner of partition 0 runs the whole-stream reader (:mod:`.whole_stream`),
  which sends them. With the whole view, each commit is also handed to ``on_whole_commit``:
  those alerts were sent from this pipeline up to there, so that reader starts from there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import KafkaError

from watchdog.daemon.config import Config
from watchdog.daemon.kafka_client import FINISH_STEP, client_kwargs
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.partitions import PartitionState
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.rules_follow import Follow, split_at
from watchdog.daemon.sources.kafka_assignor import StateAssignor
from watchdog.daemon.sources.kafka_rebalance import KafkaRebalance
from watchdog.daemon.sources.kafka_rebuild import WindowRebuild

# kafka.fetch_max_wait_ms, how long the broker may hold a fetch that finds nothing new, is
# 50 ms by default. aiokafka's default (500 ms) is fine for a broker that answers as soon as
# records arrive, but Tansu answers only when the wait is over: records produced meanwhile
# waited up to ~270 ms to be read (measured p99 produce->alert 300 ms at lateness 0, 42-62 ms
# with 20-50 ms). A short wait costs a few empty fetches a second when the topic is quiet, and
# nothing while a backlog is read, unless the broker's own reads take longer than the wait.
# A paused partition is not fetched, so its highwater stops moving: its end offset is asked for
# this often instead, or the lag gauge would read 0 during a pause while records pile up.
ENDS_REFRESH_SECONDS = 2.0
_NEG_INF = float("-inf")


class KafkaSource(KafkaRebalance):
    name = "kafka"
    # what is left uncommitted is read again (by the next start or owner): a stop may leave
    # the reorder buffer unprocessed (PartitionPlan.flush_at_stop)
    rereads = True
    partial_consequence = ("log_gap alerts are held back here: the owner of partition 0 "
                           "sends them from its whole-stream reader")

    def __init__(
        self,
        cfg: Config,
        pipeline: Pipeline,
        metrics: Metrics,
        log: Any,
        *,
        congested: Callable[[], bool] = lambda: False,
        on_assigned: Callable[[KafkaSource], None] | None = None,
        on_whole_commit: Callable[[dict[int, int]], Awaitable[None]] | None = None,
    ) -> None:
        self.cfg = cfg.kafka
        self.topic = cfg.topics.access_logs
        self.stall = cfg.stall_seconds
        self.pipeline = pipeline
        self.metrics = metrics
        self.log = log.bind(topic=self.topic)
        self.congested = congested
        self.on_assigned = on_assigned
        self.on_whole_commit = on_whole_commit
        self.lag_gauge: Any = metrics.lag  # watchdog_consumer_lag{group, topic, partition}
        # its labels for a partition (the whole-stream reader's gauge has no group)
        self.lag_labels: Callable[[int], tuple[str, ...]] = lambda p: (
            self.cfg.group, self.topic, str(p))
        self.consumer: AIOKafkaConsumer | None = None
        self._rebuild = WindowRebuild(self.cfg.rebuild_max_records, self.log)
        self._stopping = False
        self._beat = time.monotonic()
        # what is known of each partition is the pipeline's PartitionState (position, lag,
        # pause, idleness), and what to do about it its PartitionPlan's
        self._next_ends = 0.0
        self.assigned: set[int] = set()
        self.rebalances = 0
        # new partitions -> committed offsets (-1: none) in, offsets to read from out (the
        # model's saved state: daemon/model_state.py)
        self.restore_from: Callable[[dict[int, int]], dict[int, int]] | None = None
        # partitions follow the saved state (daemon/sources/kafka_assignor.py); None: aiokafka's
        # round robin alone
        self.assignor: StateAssignor | None = None
        # the anomaly service reads no further than the rules service committed
        # (daemon/rules_follow.py); None: as far as there is
        self.follow: Follow | None = None
        self._at_limit: set[int] = set()  # partitions paused at their follow limit
        self._beyond: dict[TopicPartition, list[Any]] = {}  # records fetched past it, held

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        k = self.cfg
        kw = client_kwargs(k)
        self.consumer = AIOKafkaConsumer(
            group_id=k.group, enable_auto_commit=False, auto_offset_reset=k.auto_offset_reset,
            session_timeout_ms=k.session_timeout_ms, heartbeat_interval_ms=k.heartbeat_interval_ms,
            max_poll_records=k.max_poll_records, fetch_max_wait_ms=k.fetch_max_wait_ms,
            partition_assignment_strategy=(
                (self.assignor, RoundRobinPartitionAssignor) if self.assignor is not None
                else (RoundRobinPartitionAssignor,)), **kw)
        await self.consumer.start()
        await self._rebuild.start(dict(kw, fetch_max_wait_ms=k.fetch_max_wait_ms))
        self.consumer.subscribe([self.topic], listener=self)

    def stop(self) -> None:
        self._stopping = True

    async def finish(self) -> None:
        """Last commit (bounded: the broker may be gone), then leave the group, always."""
        c, self.consumer = self.consumer, None
        if c is None:
            return
        try:
            async with asyncio.timeout(FINISH_STEP):
                await self._commit(c)
        except TimeoutError:
            self.log.warning("final_commit_timed_out",
                             consequence="events since the last commit are read again")
        # leaving the group lets the others take over at once
        stops = [asyncio.ensure_future(x.stop()) for x in (c, self._rebuild.seeker)
                 if x is not None]
        _, late = await asyncio.wait(stops, timeout=FINISH_STEP)
        for t in late:
            t.cancel()

    def alive(self, now: float) -> bool:
        return now - self._beat < self.stall

    def behind(self) -> bool:
        """Records may be unread (a backlog, or a partition not read yet: see
        :meth:`PartitionPlan.unread`): the partitions may be far apart in event time, so the
        reorder buffer must not be flushed at shutdown."""
        return any(map(self.pipeline.plan.unread, self._mine()))

    def positions(self) -> dict[str, dict[str, Any]]:
        """Each partition as this source knows it, for a debug log where a reader stops (what
        a flush of its buffer would be judged on): next offset, first offset alerted on, lag
        flag, idleness, newest event time read (epoch seconds; None: none yet), whether a
        fetch told its end, and its end as last fetched."""
        c = self.consumer
        out = {}
        for st in self._mine():
            out[str(st.key)] = {
                "pos": st.pos, "resume": st.resume, "behind": st.behind, "idle": st.idle,
                "high": st.high if st.high > _NEG_INF else None, "end_known": st.end_known,
                "highwater": None if c is None else c.highwater(
                    TopicPartition(self.topic, st.key))}
        return out

    def _mine(self) -> list[PartitionState]:
        parts = self.pipeline.partitions
        return [parts[p] for p in self.assigned if p in parts]

    @property
    def ready(self) -> bool:
        return self.consumer is not None

    # -- the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        c = self.consumer
        assert c is not None, "start() first"
        k = self.cfg
        next_commit = time.monotonic() + k.commit_interval_seconds
        while not self._stopping:
            self._beat = time.monotonic()
            self._apply_pauses(c)
            try:
                data = await c.getmany(timeout_ms=k.poll_timeout_ms, max_records=k.max_poll_records)
            except KafkaError as err:
                self.log.warning("fetch_failed", error=type(err).__name__, detail=str(err)[:200])
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            pipeline = self.pipeline  # looked up each time: a subclass may start a new one
            parts = pipeline.partitions
            fetched = data.items() if self.follow is None else self._admitted(data)
            for tp, recs in fetched:
                st = parts.get(tp.partition)
                if st is None or not st.kafka or not recs:
                    continue  # revoked while the fetch was in flight
                hw = c.highwater(tp)  # as of this fetch: more records than it returned?
                # a backlog: no alert on arrival while catching up
                st.behind = hw is not None and hw > recs[-1].offset + 1
                st.end_known = st.end_known or hw is not None
                high = pipeline.ingest(tp.partition, recs, self.topic)
                st.pos = recs[-1].offset + 1
                st.last_record = now
                if high > st.high:
                    st.high = high
            if now >= self._next_ends and any(st.paused for st in parts.values()):
                self._next_ends = now + ENDS_REFRESH_SECONDS
                await self._refresh_ends(c)
            self._housekeeping(c, now)
            if pipeline.plan.commit_now(parts, self.assigned, now=now, due=next_commit):
                # caught up: commit what became safe at once (a quiet loop turns every poll
                # timeout), not up to a commit interval after the last alert was accepted
                next_commit = now + k.commit_interval_seconds
                await self.commit()

    async def _refresh_ends(self, c: AIOKafkaConsumer) -> None:
        parts = self.pipeline.partitions
        tps = [TopicPartition(self.topic, st.key) for st in self._mine() if st.paused]
        try:
            async with asyncio.timeout(FINISH_STEP):
                ends = await c.end_offsets(tps)
        except (KafkaError, TimeoutError) as err:  # the lag stays stale until the next try
            self.log.debug("end_offsets_failed", error=type(err).__name__)
            return
        for tp, end in ends.items():
            st = parts.get(tp.partition)
            if st is not None:
                st.end = end

    def _housekeeping(self, c: AIOKafkaConsumer, now: float) -> None:
        """Lag gauges, and which partitions went idle (see :meth:`PartitionPlan.goes_idle`)."""
        pipeline = self.pipeline
        plan, idle_after = pipeline.plan, self.cfg.idle_after_seconds
        wall_ms = time.time() * 1000
        for st in self._mine():
            tp = TopicPartition(self.topic, st.key)
            lag = plan.lag(st, c.highwater(tp))
            if lag is not None and st.lag_gauge is not None:
                st.lag_gauge.set(lag)
            if st.key in self._at_limit:
                # paused at the rules service's offset: idle when nothing lies beyond (a paused
                # partition's end is asked for, not fetched); records beyond it are waited for,
                # else its buffer would be released before the rules service released its own
                if lag == 0 and not st.idle and now - st.last_record >= idle_after:
                    pipeline.mark_idle(st.key)
                continue
            polled = c.last_poll_timestamp(tp)
            polled_at = None if polled is None else now - max(0.0, wall_ms - polled) / 1000
            if plan.goes_idle(st, lag, polled_at=polled_at, woken_at=pipeline.woken_at,
                              idle_after=idle_after):
                pipeline.mark_idle(st.key)

    def _admitted(self, data: dict[TopicPartition, list[Any]]
                  ) -> list[tuple[TopicPartition, list[Any]]]:
        """The records below each partition's follow limit, those held beyond it before
        first; the rest is held (the partition paused meanwhile) rather than fetched again."""
        assert self.follow is not None
        parts, beyond, out = self.pipeline.partitions, self._beyond, []
        for tp in {*data, *beyond}:
            st = parts.get(tp.partition)
            recs = beyond.pop(tp, []) + data.get(tp, [])
            if st is None or not recs:
                continue
            keep, rest = split_at(recs, self.follow.limit(tp.partition, st.pos))
            if rest:
                beyond[tp] = rest
            out.append((tp, keep))
        return out

    def _apply_pauses(self, c: AIOKafkaConsumer) -> None:
        order = self.pipeline.order
        mine = self._mine()
        congested = self.congested()
        planned = self.pipeline.plan.pauses(
            mine, buffered=len(order), limit=self.cfg.max_buffered_events,
            ahead_of=order.watermark() + order.lateness, congested=congested)
        self._at_limit = set() if self.follow is None else self.follow.at_limit(mine)
        want = planned | self._at_limit | {tp.partition for tp in self._beyond}
        paused = {st.key for st in mine if st.paused}
        if want == paused:
            return
        if on := want - paused:
            c.pause(*(TopicPartition(self.topic, p) for p in on))
        if off := paused - want:
            c.resume(*(TopicPartition(self.topic, p) for p in off))
        for st in mine:
            st.paused = st.key in want
            if st.key in off:  # fetched again: the highwater is fresh
                st.end = None
        if not paused and planned == self.assigned and planned:
            self.log.info("paused", why="sinks behind" if congested else "buffer full")

    async def commit(self) -> None:
        if self.consumer is not None:
            await self._commit(self.consumer)

    async def _commit(self, c: AIOKafkaConsumer) -> None:
        todo = self.pipeline.plan.commits(self.pipeline.partitions.values())
        if not todo:
            return
        try:
            await c.commit({TopicPartition(self.topic, p): safe
                            for p, (_b, safe) in todo.items()})
        except KafkaError as err:  # e.g. a rebalance in progress: the next commit catches up
            self.log.warning("commit_failed", error=type(err).__name__, detail=str(err)[:200])
            return
        for book, safe in todo.values():
            book.committed = max(book.committed, safe)
        if self.on_whole_commit is not None and not self.pipeline.partial_view:
            await self.on_whole_commit({p: safe for p, (_b, safe) in todo.items()})

    def lags(self) -> dict[int, int]:
        """Records known to be unread per partition (as in ``watchdog_consumer_lag``)."""
        return {st.key: st.lag for st in self._mine() if st.lag is not None}
