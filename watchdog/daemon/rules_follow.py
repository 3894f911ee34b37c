"""The anomaly service reads no further than the rules service has finished, so that its risk
counts the rules' alerts as one process does.

Split in two services, the anomaly service takes the rules' alerts from the Kafka sink's topic
(:mod:`.rule_alert_feed`). Ahead of the rules service (a backlog both read, the rules service
restarting), it scored windows before the alerts of their time existed: those counted late,
decayed, and its risk alerts differed from one process's (measured: the insider's at 13:00
instead of 13:09:20). So it follows the rules service:

- the rules service commits a partition's offset only once the alerts of the events before it
  are acknowledged by every sink, its Kafka topic included;
- so once the feed has read the alerts topic to its end offsets as they were *after* the rules
  group's committed offsets were read, every rule alert caused by an event before those
  offsets has been handed to the stage;
- the anomaly service's Kafka source reads each partition only below that offset (its
  *limit*): it pauses there, and what a fetch brought beyond it is held until it moves (not
  fetched again: live, the rules service commits about a minute behind the stream's end, and
  every resumed fetch would bring that minute again).

The model's alerts come later by what the rules service holds before it commits (its reorder
buffer, ``detection.lateness_seconds``; a quiet stream's buffer is released once it is idle):
measured live at the default 60 s, the stage 121 s behind the stream instead of 60
(bench/bench_follow.py). (Handing the rules service's watermark over with its commits would
save most of that; not done: the anomaly service's own order is what makes it equal replay.)

A rules service that makes no progress (down, or another group name) must not stop the model:
when no limit has moved for ``detection.follow_rules_seconds`` while records wait beyond one,
those partitions are no longer followed (``rules_offsets_unmoved``, counted in
``watchdog_rules_follow_lifted_total``) and the rules' alerts count late, as without following.
A partition is followed again once the rules group's offset in it moves: it pauses until the
rules service is past its position (what it read meanwhile keeps its late rule alerts).
``follow_rules_seconds: 0`` turns following off.

What it does not cover: events from MQTT (no offsets to follow). (A rule alert of an account
the stage has not seen yet is held by the feed and handed over with the account's first events:
:meth:`.RuleAlertFeed.seen`.)
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Mapping
from operator import attrgetter
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from watchdog.daemon.config import Config
from watchdog.daemon.kafka_client import keep_reading
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.partitions import PartitionState
from watchdog.daemon.rule_alert_feed import RuleAlertFeed


class _Record(Protocol):
    @property
    def offset(self) -> int: ...


R = TypeVar("R", bound=_Record)

POLL_SECONDS = 0.5  # how often the rules group's offsets are read
CATCH_UP_SECONDS = 10.0  # at most this long waiting for the feed to read to the topic's end


def split_at(recs: list[R], limit: int | None) -> tuple[list[R], list[R]]:
    """Records (in offset order) below ``limit`` and those at or past it (None: all below)."""
    if limit is None or not recs or recs[-1].offset < limit:
        return recs, []
    k = bisect_left(recs, limit, key=attrgetter("offset"))
    return recs[:k], recs[k:]


class Follow:
    """The limits (pure): ``limit(p, pos)`` says up to which offset partition ``p`` may be read
    (exclusive; None: not followed), ``advance`` takes the rules group's offsets,
    ``stalled`` says which waiting partitions stop being followed."""

    def __init__(self, stall_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall = stall_seconds
        self.clock = clock
        self.limits: dict[int, int] = {}  # partition -> offsets below it may be read
        # not followed (lifted after a stall) -> its limit then: followed again once it moves
        self.free: dict[int, int] = {}
        self.waiting: set[int] = set()  # at their limit with records beyond (the source says)
        self.moved_at = clock()  # when a limit last moved (or the start)
        self.waiting_since = self.moved_at  # when partitions began waiting (none: meaningless)

    def limit(self, p: int, pos: int) -> int | None:
        lim = self.limits.get(p, 0)
        if p in self.free:
            if lim <= self.free[p]:
                return None
            del self.free[p]  # the rules service moves again: wait for it to pass us
        return lim

    def at_limit(self, parts: Collection[PartitionState]) -> set[int]:
        """The partitions read up to their limit (to pause); those with records beyond it,
        or an end not known yet, are noted as waiting (a stall is judged on them)."""
        at = {st.key for st in parts if (lim := self.limit(st.key, st.pos)) is not None
              and st.pos >= lim}
        waiting = {st.key for st in parts if st.key in at and (st.lag is None or st.lag > 0)}
        if waiting and not self.waiting:
            self.waiting_since = self.clock()
        self.waiting = waiting
        return at

    def advance(self, committed: Mapping[int, int]) -> None:
        """The rules group's committed offsets, each one's alerts read by the feed."""
        for p, off in committed.items():
            if off > self.limits.get(p, 0):
                self.limits[p] = off
                self.moved_at = self.clock()

    def stalled(self) -> list[int]:
        """The waiting partitions to stop following: no limit moved for ``stall`` seconds
        while they waited (a slow start, before any partition was assigned, does not count)."""
        if self.clock() - max(self.moved_at, self.waiting_since) < self.stall:
            return []
        lifted = sorted(self.waiting - self.free.keys())
        self.free.update((p, self.limits.get(p, 0)) for p in lifted)
        return lifted


class RulesFollower:
    """Reads the rules group's committed offsets (a consumer in that group that never joins it:
    it subscribes to nothing, so it takes no partition and commits nothing) and the alerts
    topic's end offsets, waits for the feed to have read that far, then moves the limits."""

    def __init__(self, follow: Follow, *, rules_group: str, topic: str, alerts_topic: str,
                 client_kwargs: dict[str, Any], partitions: Callable[[], Iterable[int]],
                 feed_reached: Callable[[Mapping[TopicPartition, int]], bool],
                 count_lift: Callable[[], None], log: Any) -> None:
        self.follow = follow
        self.rules_group = rules_group
        self.topic = topic
        self.alerts_topic = alerts_topic
        self.client_kwargs = client_kwargs
        self.partitions = partitions  # this instance's partitions of ``topic``
        self.feed_reached = feed_reached
        self.count_lift = count_lift
        self.log = log.bind(rules_group=rules_group)
        self.consumer: AIOKafkaConsumer | None = None
        self.alert_parts: list[TopicPartition] = []  # the alerts topic's, once it exists

    async def run(self) -> None:
        await keep_reading(self._step, self.close, self.log, "rules_offsets_failed")

    async def _step(self) -> None:
        self._check_stall()
        if self.consumer is None:
            self.consumer = await self._open()
        await self._round(self.consumer)
        await asyncio.sleep(POLL_SECONDS)

    async def _open(self) -> AIOKafkaConsumer:
        c = AIOKafkaConsumer(group_id=self.rules_group, enable_auto_commit=False,
                             **self.client_kwargs)
        try:
            await c.start()
        except BaseException:
            await c.stop()
            raise
        return c

    async def _round(self, c: AIOKafkaConsumer) -> None:
        parts = sorted(self.partitions())
        if not parts:
            return
        tps = [TopicPartition(self.topic, p) for p in parts]
        found = await asyncio.gather(*(c.committed(tp) for tp in tps))
        committed = {tp.partition: off for tp, off in zip(tps, found, strict=True)
                     if off is not None}
        # the alerts topic's ends *after* the commits: every alert before them is below these
        # asked for (a metadata request) only until the topic exists
        if not self.alert_parts and self.alerts_topic in await c.topics():
            self.alert_parts = [TopicPartition(self.alerts_topic, p) for p in sorted(
                c.partitions_for_topic(self.alerts_topic) or ())]
        # (none: no alert yet, nothing to wait for)
        ends = await c.end_offsets(self.alert_parts) if self.alert_parts else {}
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while not self.feed_reached(ends):
            if time.monotonic() > deadline:
                return  # the feed is away: no limit moves (a stall lifts them in time)
            self._check_stall()
            await asyncio.sleep(0.05)
        self.follow.advance(committed)

    def _check_stall(self) -> None:
        lifted = self.follow.stalled()
        if lifted:
            self.count_lift()
            self.log.warning("rules_offsets_unmoved", partitions=lifted,
                             waited_seconds=self.follow.stall,
                             why="the rules service is down or stuck, or holds an event dated "
                                 "ahead of the present in a quiet stream",
                             consequence="the model reads on without following it: the rules' "
                                         "alerts count late in the risk until it is past here")

    async def close(self) -> None:
        c, self.consumer = self.consumer, None
        if c is not None:
            await c.stop()


def configured_follower(cfg: Config, rules_group: str, feed: RuleAlertFeed | None,
                        client: dict[str, Any], metrics: Metrics, log: Any
                        ) -> RulesFollower | None:
    """The anomaly service's follower when it reads the rules' alerts back from Kafka and
    consumes Kafka (``partitions`` is set by its Kafka source); None otherwise."""
    secs = cfg.detection.follow_rules_seconds
    if feed is None or secs <= 0 or not cfg.kafka.consume:
        return None
    return RulesFollower(Follow(secs), rules_group=rules_group, topic=cfg.topics.access_logs,
                         alerts_topic=feed.topic, client_kwargs=client, partitions=tuple,
                         feed_reached=feed.reached, count_lift=metrics.rules_follow_lifted.inc,
                         log=log)
