"""The anomaly service's follow limits (watchdog.daemon.rules_follow.Follow), pure: how far
each partition may be read, when following is lifted and when it takes up again. The service
against the real broker: tests/daemon/test_split_risk.py."""

from __future__ import annotations

from watchdog.daemon.rules_follow import Follow, split_at


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_read_before_the_rules_group_committed() -> None:
    f = Follow(60.0, Clock())
    assert f.limit(0, 0) == 0
    f.advance({0: 40, 1: 7})
    assert (f.limit(0, 10), f.limit(1, 10), f.limit(2, 0)) == (40, 7, 0)
    f.advance({0: 30})  # never back (a rebalance of the rules group may commit less)
    assert f.limit(0, 10) == 40


def test_lifted_only_for_waiting_partitions_after_no_limit_moved_for_the_stall() -> None:
    clock = Clock()
    f = Follow(60.0, clock)
    f.advance({0: 5, 1: 5})
    f.waiting = {0}
    clock.now += 59
    assert f.stalled() == []
    f.advance({1: 6})  # the rules service moves on another partition: not stalled
    clock.now += 59
    assert f.stalled() == []
    clock.now += 2
    assert f.stalled() == [0]
    assert (f.limit(0, 5), f.limit(1, 6)) == (None, 6)
    assert f.stalled() == []  # said once


def test_followed_again_once_its_limit_moves_waiting_for_the_rules_to_pass() -> None:
    clock = Clock()
    f = Follow(10.0, clock)
    f.waiting = {0}
    clock.now += 11
    assert f.stalled() == [0]  # no commit at all (rules service not there)
    assert f.limit(0, 500) is None
    f.advance({0: 0})  # (no move: still lifted)
    assert f.limit(0, 600) is None
    f.advance({0: 450})
    assert f.limit(0, 600) == 450  # paused at 600 until the rules are past it
    f.advance({0: 650})
    assert f.limit(0, 600) == 650



def test_a_fetch_past_the_limit_and_the_partitions_at_it() -> None:
    from types import SimpleNamespace

    from watchdog.daemon.partitions import PartitionState

    recs = [SimpleNamespace(offset=o) for o in (5, 6, 9, 10, 12)]
    assert split_at(recs, None) == (recs, [])
    assert split_at(recs, 13) == (recs, [])
    assert split_at(recs, 10) == (recs[:3], recs[3:])  # 10 and after wait
    assert split_at(recs, 7) == (recs[:2], recs[2:])  # (offsets may skip)
    assert split_at(recs, 5) == ([], recs)
    f = Follow(60.0, Clock())
    f.advance({0: 10, 1: 10, 2: 10})
    parts = [PartitionState(0, pos=10, lag=3), PartitionState(1, pos=10, lag=0),
             PartitionState(2, pos=4, lag=6), PartitionState(3, pos=0, lag=None)]
    assert f.at_limit(parts) == {0, 1, 3}
    assert f.waiting == {0, 3}  # records beyond, or not known yet


def test_the_stall_counts_from_when_partitions_began_waiting() -> None:
    """A start that took long (state loaded, the group joined) before any partition waited
    does not count as the rules service's stall."""
    from watchdog.daemon.partitions import PartitionState

    clock = Clock()
    f = Follow(60.0, clock)
    clock.now += 100  # nothing assigned yet
    f.at_limit([PartitionState(0, pos=0, lag=5)])
    assert f.waiting == {0}
    clock.now += 59
    assert f.stalled() == []
    clock.now += 2
    assert f.stalled() == [0]
