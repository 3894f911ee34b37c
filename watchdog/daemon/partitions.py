"""What the daemon knows of each partition it reads, in one record, and the plan that decides
from those records: pause, resume, idle, flush, commit, and which re-read records to skip.

A :class:`PartitionState` is owned by the :class:`~watchdog.daemon.pipeline.Pipeline` (one per
Kafka partition, or per stream of a source that is not Kafka); the source writes what it reads
from the broker into it (position, lag, time of the last record) and asks the
:class:`PartitionPlan` what to do. The plan is pure: no I/O, no asyncio, no clock of its own
(times are handed in), so that every decision is unit-tested on its own, like
:class:`~watchdog.daemon.offsets.PartitionBook`.

Redeliveries older than the reorder buffer's dedupe horizon (a partition revoked and assigned
back, re-read from one window horizon before its committed offset): their event ids are
forgotten, so the buffer would take them for new events, feed them to the windows a second time
(``subject_count`` doubled: false ``bulk_export``) and, for records past the committed offset,
raise their alerts again. The plan remembers, per partition, the span of offsets whose records
this process has processed (:attr:`PartitionPlan.fed`, kept across assignments, as the windows
are); such records are skipped (:meth:`PartitionPlan.unseen`, counted as duplicates). Records
below the committed offset and outside that span (after a restart, or a partition new to this
instance) only rebuild the windows (their alerts were sent before).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watchdog.daemon.offsets import PartitionBook

_NEG_INF = float("-inf")


@dataclass(slots=True, eq=False)
class PartitionState:
    """One partition (or stream) as this instance reads it, for the current assignment."""

    key: int
    # the commit (Kafka) or acknowledgement (a stream's source) bookkeeping; None: untracked
    book: PartitionBook | None = None
    kafka: bool = True  # committed to Kafka by its source; False: a stream (MQTT) it acks
    resume: int = -1  # records below this offset were alerted on before: windows only
    start: int = 0  # where this assignment's reading began (the seek)
    pos: int = 0  # next offset to read
    last_record: float = _NEG_INF  # monotonic time of the last record read
    high: float = _NEG_INF  # latest event time read
    end: int | None = None  # end offset asked for while paused (its highwater is stale)
    # end offset asked for at the assignment: the lag until a fetch tells the highwater
    assigned_end: int | None = None
    lag: int | None = None  # records known to be unread, as last computed (None: not known)
    behind: bool = False  # records known to be unread (a backlog): judged in order only
    end_known: bool = False  # a fetch told its end (highwater) since the assignment
    paused: bool = False
    idle: bool = False  # caught up and quiet: the watermark does not wait for it
    lag_gauge: Any = None  # watchdog_consumer_lag's child for it


class PartitionPlan:
    """Decisions over the partitions' states (pure; see the module docstring)."""

    __slots__ = ("aligning", "fed")

    def __init__(self) -> None:
        # pausing the partitions ahead of the watermark until the buffer has halved
        self.aligning = False
        # partition -> [lo, hi): offsets whose records this process processed (any assignment)
        self.fed: dict[int, tuple[int, int]] = {}

    # -- records processed before ----------------------------------------------------------
    def opened(self, st: PartitionState) -> None:
        """A partition assigned; reading starts at ``st.start``. The span processed before is
        kept if this reading joins it (starts at or before its end), else forgotten."""
        span = self.fed.get(st.key)
        if span is None or st.start > span[1]:
            self.fed[st.key] = (st.start, st.start)

    def unseen(self, st: PartitionState, records: Sequence[Any]) -> Sequence[Any]:
        """``records`` (in offset order, ``.offset``) without those this process processed
        before; what this assignment read is then part of the span once it reaches it (reading
        is contiguous from ``st.start``)."""
        lo, hi = self.fed.get(st.key, (st.start, st.start))
        first, upto = records[0].offset, records[-1].offset + 1
        if first >= hi or upto <= lo:
            kept = records
        else:
            kept = [r for r in records if not lo <= r.offset < hi]
        if upto >= lo:  # this reading joined the span processed before (or extends it)
            self.fed[st.key] = (min(lo, st.start), max(hi, upto))
        return kept

    # -- pause and resume ------------------------------------------------------------------
    def pauses(self, parts: Iterable[PartitionState], *, buffered: int, limit: int,
               ahead_of: float, congested: bool) -> set[int]:
        """The partitions to pause: all while the sinks are behind (``congested``); while
        ``limit`` events wait in the reorder buffer (until it halved), those whose latest event
        is past ``ahead_of`` (the watermark plus the lateness), so that the partition behind
        catches up and memory stays bounded; else none."""
        self.aligning = buffered >= limit or (self.aligning and buffered > limit // 2)
        if congested:
            return {st.key for st in parts}
        if self.aligning:
            return {st.key for st in parts if st.high > ahead_of}
        return set()

    # -- lag and idleness ------------------------------------------------------------------
    @staticmethod
    def lag(st: PartitionState, highwater: int | None) -> int | None:
        """Records known to be unread (None: no highwater yet); sets ``st.lag`` and
        ``st.behind``. A paused partition is not fetched: the end offset asked for meanwhile
        counts too. Before the first fetch, the end asked for at the assignment gives the lag
        (a backlog reads as one from the start, not as 0), but not the end: records may be
        produced meanwhile (:meth:`unread`)."""
        if st.paused and st.end is not None:
            highwater = max(highwater or 0, st.end)
        if highwater is None:
            end = st.assigned_end
            st.lag = None if end is None else max(0, end - st.pos)
            return st.lag
        st.end_known = True
        lag = st.lag = max(0, highwater - st.pos)
        st.behind = lag > 0
        return lag

    @staticmethod
    def unread(st: PartitionState) -> bool:
        """Records may be unread: known (a backlog), or its end is unknown (no fetch told it
        since the assignment). A buffer is not flushed then: processed without that
        partition's events, it would judge a dataset on part of it (false ``log_gap``)."""
        return st.behind or not st.end_known

    @staticmethod
    def goes_idle(st: PartitionState, lag: int | None, *, polled_at: float | None,
                  woken_at: float, idle_after: float) -> bool:
        """Caught up and quiet: only if a fetch answered ``idle_after`` seconds after the last
        record that there was nothing more (``polled_at``, monotonic). While the broker is
        away the highwater is stale, and records produced just before the outage would
        arrive behind the watermark. Quiet since the later of its last record and the end of
        a pause of every partition (``woken_at``)."""
        if lag is None or lag or st.paused or st.idle or polled_at is None:
            return False
        return polled_at - max(st.last_record, woken_at) >= idle_after

    @staticmethod
    def all_idle(parts: Mapping[int, PartitionState]) -> bool:
        return all(st.idle for st in parts.values())

    @staticmethod
    def wake(parts: Mapping[int, PartitionState], key: int) -> set[int] | None:
        """Records again on an idle partition. If every partition was idle, the others are
        waited for again (returned) before the watermark moves: what was produced after the
        pause reaches every partition at once, and the first batch read must not make the
        others' events late. Clears the partitions' idleness."""
        if PartitionPlan.all_idle(parts):
            for st in parts.values():
                st.idle = False
            return set(parts) - {key}
        parts[key].idle = False
        return None

    @staticmethod
    def assigned(parts: Mapping[int, PartitionState]) -> set[int]:
        """A partition was assigned: the idle ones are waited for again (returned), as after a
        pause of every partition (:meth:`wake`). Its records are read first, and what was
        produced meanwhile must not find an idle partition passed by the others' releases."""
        woken = {k for k, st in parts.items() if st.idle}
        for k in woken:
            parts[k].idle = False
        return woken

    @staticmethod
    def flush_when_idle(parts: Mapping[int, PartitionState], *, buffered: int,
                        processed_since_flush: bool) -> bool:
        """Every partition is idle and something is buffered or was processed since the last
        flush: release the buffer (a quiet system must not sit on its last alerts)."""
        return PartitionPlan.all_idle(parts) and (buffered > 0 or processed_since_flush)

    @staticmethod
    def flush_at_stop(parts: Mapping[int, PartitionState], *, rereads: bool = True) -> bool:
        """A reader stops (a shutdown, or the whole-stream reader's role ends): process what
        its reorder buffer holds only if every partition is idle (the running reader would
        have released it too: :meth:`flush_when_idle`), or if its source cannot read the
        records again (``rereads`` False: MQTT, where a buffer left would be lost). Else it is
        left, its records uncommitted, for the next reader: while the stream is produced, the
        last fetch may have brought one partition's newest records and not the others' of the
        same minutes (their ends, as last fetched, are stale: no check of them closes that, the
        records are produced while they are asked for), and that partition's tail judged alone
        raises false ``log_gap`` (and any rule that depends on order across partitions). The
        cost: alerts raised on arrival of the buffered events are sent again by the next reader
        (same ``alert_id``)."""
        return not rereads or PartitionPlan.all_idle(parts)

    # -- commits ---------------------------------------------------------------------------
    @staticmethod
    def commits(parts: Iterable[PartitionState]) -> dict[int, tuple[PartitionBook, int]]:
        """Kafka partitions whose safe offset moved past the committed one: key -> (its book,
        the offset to commit)."""
        todo = {}
        for st in parts:
            book = st.book
            if book is not None and st.kafka:
                safe = book.safe()
                if safe > book.committed:
                    todo[st.key] = (book, safe)
        return todo

    @staticmethod
    def commit_now(parts: Mapping[int, PartitionState], assigned: Iterable[int], *,
                   now: float, due: float) -> bool:
        """At the commit interval (``due``), or at once when caught up (every assigned
        partition idle) with something to commit: what became safe is not held a whole
        interval after the last alert was accepted."""
        if now >= due:
            return True
        mine = [parts[p] for p in assigned if p in parts]
        if not mine or not all(st.idle for st in mine):
            return False
        return bool(PartitionPlan.commits(mine))
