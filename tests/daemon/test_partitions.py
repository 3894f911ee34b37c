"""The PartitionPlan's decisions, each on its own (pure: no broker, no asyncio), and KafkaSource
acting on them (a stub consumer records what it was told)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any

import orjson
import pytest

from tests.daemon.helpers import CollectAlerts, QuietLog, World
from watchdog.daemon.config import load_config
from watchdog.daemon.logging import get_logger
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook
from watchdog.daemon.partitions import PartitionPlan, PartitionState
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.base import Raw
from watchdog.daemon.sources.kafka import KafkaSource


def parts(*states: PartitionState) -> dict[int, PartitionState]:
    return {st.key: st for st in states}


# -- pause and resume ------------------------------------------------------------------------
def test_every_partition_pauses_while_the_sinks_are_behind() -> None:
    plan = PartitionPlan()
    a, b = PartitionState(0), PartitionState(1)
    assert plan.pauses([a, b], buffered=0, limit=100, ahead_of=0.0, congested=True) == {0, 1}
    assert plan.pauses([a, b], buffered=0, limit=100, ahead_of=0.0, congested=False) == set()


def test_a_full_buffer_pauses_the_partitions_ahead_until_it_has_halved() -> None:
    plan = PartitionPlan()
    behind, ahead = PartitionState(0, high=100.0), PartitionState(1, high=5000.0)
    both = [behind, ahead]
    kw: dict[str, Any] = {"limit": 100, "ahead_of": 160.0, "congested": False}
    assert plan.pauses(both, buffered=99, **kw) == set()
    assert plan.pauses(both, buffered=100, **kw) == {1}  # the one ahead of the watermark
    assert plan.pauses(both, buffered=51, **kw) == {1}  # not halved yet: still aligning
    assert plan.pauses(both, buffered=50, **kw) == set()
    assert plan.pauses(both, buffered=99, **kw) == set()  # below the limit again


# -- lag and idleness ------------------------------------------------------------------------
def test_lag_counts_the_end_asked_for_while_paused() -> None:
    st = PartitionState(0, pos=10)
    assert PartitionPlan.lag(st, None) is None
    assert PartitionPlan.lag(st, 10) == 0
    assert not st.behind
    assert PartitionPlan.lag(st, 15) == 5
    assert st.behind
    st.paused, st.end = True, 40  # its highwater stopped moving while paused
    assert PartitionPlan.lag(st, 15) == 30
    st.paused = False  # resumed: the fetched highwater counts again
    assert PartitionPlan.lag(st, 10) == 0
    assert not st.behind


def test_before_the_first_fetch_the_end_asked_at_the_assignment_gives_the_lag() -> None:
    st = PartitionState(0, start=40, pos=40, assigned_end=100)
    assert PartitionPlan.lag(st, None) == 60  # a backlog from the start, not 0
    assert st.lag == 60
    assert PartitionPlan.unread(st)  # but the end is not known: records may come meanwhile
    assert not st.end_known
    assert PartitionPlan.lag(st, 120) == 80  # a fetch told the highwater: it counts
    assert (st.lag, st.end_known, st.behind) == (80, True, True)
    assert PartitionPlan.lag(PartitionState(0), None) is None  # nothing asked, nothing known


def test_a_partition_not_read_since_its_assignment_may_have_unread_records() -> None:
    """Its end is unknown until a fetch told it: a flush then would judge a dataset
    without its events (the whole-stream reader's flush at a handover raised false log_gap
    alerts while partition 0 had not been fetched)."""
    st = PartitionState(0, start=40, pos=40)
    assert PartitionPlan.lag(st, None) is None
    assert PartitionPlan.unread(st)
    assert PartitionPlan.lag(st, 40) == 0  # a fetch told its end: nothing to read (empty)
    assert not PartitionPlan.unread(st)
    assert PartitionPlan.lag(st, 45) == 5  # a backlog
    assert PartitionPlan.unread(st)


def test_a_partition_goes_idle_only_when_a_fetch_found_it_quiet_long_enough() -> None:
    st = PartitionState(0, last_record=100.0)
    idle = PartitionPlan.goes_idle
    kw: dict[str, Any] = {"woken_at": float("-inf"), "idle_after": 5.0}
    assert idle(st, 0, polled_at=105.0, **kw)
    assert not idle(st, 0, polled_at=104.9, **kw)  # not quiet long enough
    assert not idle(st, 0, polled_at=None, **kw)  # no fetch answered since (broker away)
    assert not idle(st, 3, polled_at=200.0, **kw)  # records unread
    assert not idle(st, None, polled_at=200.0, **kw)  # no highwater yet
    # quiet counted from the end of a pause of every partition, when later
    assert not idle(st, 0, polled_at=105.0, woken_at=102.0, idle_after=5.0)
    st.paused = True
    assert not idle(st, 0, polled_at=200.0, **kw)
    st.paused, st.idle = False, True
    assert not idle(st, 0, polled_at=200.0, **kw)  # already idle


def test_records_after_a_pause_of_every_partition_make_the_others_awaited_again() -> None:
    ps = parts(PartitionState(0, idle=True), PartitionState(1, idle=True),
               PartitionState(2, idle=True))
    assert PartitionPlan.wake(ps, 1) == {0, 2}
    assert not any(st.idle for st in ps.values())
    ps[0].idle = True  # one partition quiet while the others read: only it wakes
    assert PartitionPlan.wake(ps, 0) is None
    assert not ps[0].idle


def test_the_buffer_is_flushed_when_every_partition_is_idle_and_something_is_left() -> None:
    ps = parts(PartitionState(0, idle=True), PartitionState(1))
    flush = PartitionPlan.flush_when_idle
    assert not flush(ps, buffered=10, processed_since_flush=True)
    ps[1].idle = True
    assert flush(ps, buffered=10, processed_since_flush=False)
    assert flush(ps, buffered=0, processed_since_flush=True)
    assert not flush(ps, buffered=0, processed_since_flush=False)  # nothing new since


# -- commits ---------------------------------------------------------------------------------
def test_commits_are_the_kafka_books_whose_safe_offset_moved() -> None:
    moved, still, stream = PartitionBook(0, 0), PartitionBook(1, 5), PartitionBook(9, 0)
    moved.consumed(7)
    stream.consumed(3)  # a stream's book is acknowledged by its source, never committed
    ps = parts(PartitionState(0, moved), PartitionState(1, still),
               PartitionState(9, stream, kafka=False))
    assert PartitionPlan.commits(ps.values()) == {0: (moved, 7)}
    moved.hold(7)
    moved.consumed(8)
    assert PartitionPlan.commits(ps.values()) == {0: (moved, 7)}  # held in the buffer
    moved.committed = 7
    assert PartitionPlan.commits(ps.values()) == {}


def test_commit_at_the_interval_or_at_once_when_caught_up() -> None:
    book = PartitionBook(0, 0)
    ps = parts(PartitionState(0, book), PartitionState(1, PartitionBook(1, 0)))
    now = PartitionPlan.commit_now
    assert now(ps, {0, 1}, now=10.0, due=10.0)
    assert not now(ps, {0, 1}, now=9.0, due=10.0)  # nothing to commit
    book.consumed(4)
    assert not now(ps, {0, 1}, now=9.0, due=10.0)  # not caught up: wait for the interval
    ps[0].idle = ps[1].idle = True
    assert now(ps, {0, 1}, now=9.0, due=10.0)
    assert not now(ps, set(), now=9.0, due=10.0)  # nothing assigned


def _pipeline(world: World) -> tuple[Pipeline, CollectAlerts]:
    out = CollectAlerts()
    return Pipeline(world.engine(), out, None, Metrics(), QuietLog()), out  # type: ignore[arg-type]


# -- KafkaSource acting on the plan's decisions (a stub consumer: what it was told to do) -------
class _Consumer:
    def __init__(self) -> None:
        self.paused: set[int] = set()
        self.high: dict[int, int] = {}
        self.polled_ms: float | None = None

    def pause(self, *tps: Any) -> None:
        self.paused |= {tp.partition for tp in tps}

    def resume(self, *tps: Any) -> None:
        self.paused -= {tp.partition for tp in tps}

    def highwater(self, tp: Any) -> int | None:
        return self.high.get(tp.partition)

    def last_poll_timestamp(self, tp: Any) -> float | None:
        return self.polled_ms


def _source(world: World, congested: list[bool]) -> tuple[KafkaSource, Pipeline]:
    p, _ = _pipeline(world)
    src = KafkaSource(load_config(None), p, p.metrics, get_logger("test"),
                      congested=lambda: congested[0])
    for key in (0, 1):
        p.open_partition(key, 0)
    src.assigned = {0, 1}
    return src, p


def test_kafka_source_pauses_and_resumes_as_the_plan_says(world: World) -> None:
    congested = [True]
    src, p = _source(world, congested)
    c = _Consumer()
    src._apply_pauses(c)  # type: ignore[arg-type]
    assert c.paused == {0, 1}
    assert all(st.paused for st in p.partitions.values())
    p.partitions[0].end = 9  # asked for while paused
    congested[0] = False
    src._apply_pauses(c)  # type: ignore[arg-type]
    assert c.paused == set()
    assert not any(st.paused for st in p.partitions.values())
    assert p.partitions[0].end is None  # fetched again: its highwater is fresh


def test_kafka_source_marks_idle_and_commits_as_the_plan_says(world: World) -> None:
    src, p = _source(world, [False])
    c = _Consumer()
    c.high = {0: 0, 1: 3}  # partition 1 has records unread
    now = time.monotonic()
    for st in p.partitions.values():
        st.last_record = now - 60
    c.polled_ms = time.time() * 1000  # a fetch answered just now
    src._housekeeping(c, now)
    assert p.partitions[0].idle
    assert not p.partitions[1].idle
    assert src.behind()
    assert p.partitions[1].behind
    c.high[1] = 0
    src._housekeeping(c, now)
    assert p.all_idle()
    assert not src.behind()
    assert not p.plan.commit_now(p.partitions, src.assigned, now=now, due=now + 1)
    p.partitions[0].book.consumed(5)  # type: ignore[union-attr]
    assert p.plan.commit_now(p.partitions, src.assigned, now=now, due=now + 1)


# -- records processed before ------------------------------------------------------------------
def _recs(*offsets: int) -> list[Raw]:
    return [Raw(b"", o, 0) for o in offsets]


def test_records_processed_before_are_skipped_when_read_again() -> None:
    plan = PartitionPlan()
    st = PartitionState(0, start=100, resume=150)
    plan.opened(st)
    assert plan.unseen(st, r := _recs(100, 149, 150)) is r  # nothing processed before
    plan.unseen(st, _recs(199))  # offsets 100..199 processed
    assert plan.fed[0] == (100, 200)
    # revoked and assigned back: re-read from 50, committed at 170
    again = PartitionState(0, start=50, resume=170)
    plan.opened(again)
    assert [r.offset for r in plan.unseen(again, _recs(50, 79))] == [50, 79]
    assert plan.fed[0] == (100, 200)  # not up to the span yet: it is not widened
    assert [r.offset for r in plan.unseen(again, _recs(80, 99, 100, 199, 200))] == [80, 99, 200]
    assert plan.fed[0] == (50, 201)


def test_a_reading_that_does_not_join_the_span_forgets_it() -> None:
    plan = PartitionPlan()
    st = PartitionState(0, start=0)
    plan.opened(st)
    plan.unseen(st, _recs(99))
    later = PartitionState(0, start=500, resume=500)  # others read 100..499 meanwhile
    plan.opened(later)
    assert plan.fed[0] == (500, 500)


def _feed(p: Pipeline, values: list[bytes], first: int) -> None:
    for i in range(0, len(values), 500):
        p.ingest(0, [Raw(v, first + i + k, 0) for k, v in enumerate(values[i:i + 500])],
                 "access-logs")


@pytest.mark.parametrize("forget", [False, True], ids=["skipped", "without-the-span"])
def test_a_partition_assigned_back_gives_the_alerts_of_one_reading(world: World,
                                                                   forget: bool) -> None:
    """Read to 70%, committed only to 50% (a rebalance before the next commit), revoked and
    assigned back: re-read from the start (windows rebuilt from one horizon back), then the
    rest. The records read before are older than the reorder buffer's dedupe horizon: without
    the span they are fed to the windows a second time (counts of ``subject_count`` events
    doubled: false ``bulk_export``; alerts again once their ids are forgotten)."""
    events = world.events
    once, one = _pipeline(world)
    _feed(once, events, 0)
    once.flush()

    twice, two = _pipeline(world)
    twice.open_partition(0, 0)
    read, committed = len(events) * 7 // 10, len(events) // 2
    _feed(twice, events[:read], 0)
    twice.close_partitions([0])
    if forget:  # what the daemon did before it remembered the span
        twice.plan.fed.clear()
    twice.open_partition(0, committed, start=0, resume=committed)
    _feed(twice, events, 0)
    twice.flush()

    alerts = Counter(a.rule for a in one.alerts)
    assert alerts
    assert {a.alert_id for a in one.alerts} == set(world.expected)
    if forget:  # the windows saw the events read before twice
        assert twice.detector.processed > once.detector.processed
        return
    assert Counter(a.rule for a in two.alerts) == alerts
    assert {a.alert_id for a in two.alerts} == set(world.expected)
    assert twice.skipped == read
    assert twice.detector.processed == once.detector.processed


def test_a_new_assignment_makes_the_idle_partitions_awaited_again(world: World) -> None:
    """Partitions 0 and 1 idle, 2 assigned (not idle: its records are read first): the
    records produced meanwhile reach 0 and 2 first; 1's must not be late behind them."""
    events = sorted(world.events, key=lambda raw: datetime.fromisoformat(
        orjson.loads(raw)["@timestamp"].replace("Z", "+00:00")))
    p, _ = _pipeline(world)
    for k in (0, 1):
        p.open_partition(k, 0)
    for k in (0, 1):
        p.mark_idle(k)
    p.open_partition(2, 0)
    thirds = [events[k::3] for k in range(3)]
    for k in (0, 2, 1):
        p.ingest(k, [Raw(v, i, k) for i, v in enumerate(thirds[k])], "access-logs")
    assert p.order.stats.late == 0
