"""The intake: events taken apart into two flat lists, all of an event's values or none."""

from __future__ import annotations

import numpy as np
import pytest

from tests.anomaly.conftest import T0, decode, event, make_engine
from watchdog.anomaly.intake import COUNTS, EID, NUMS, OBJS, ROW, SIDS, SUBJ, UID, Kept, _slots
from watchdog.anomaly.reduction import reduce_events
from watchdog.policy.model import Policy


class Broken:
    """A policy whose domain check raises (a bug): the event that asks for it fails."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def is_internal_domain(self, domain: str) -> bool:
        raise KeyError(domain)


def test_an_event_that_raises_leaves_nothing_behind() -> None:
    docs = [event(T0 + i, f"u{i}", f"e{i}", resource="crm.customers", ids=(f"c{i}",))
            for i in range(2)]
    docs.append(event(T0 + 2, "u2", "e2", "email", resource="crm.customers", ids=("c2",),
                      dest={"kind": "email", "domain": "mail.example"}))
    items = [(e, e.timestamp.timestamp()) for e in map(decode, docs)]
    kept = Kept(Broken(make_engine().policy), {"u1": 7})  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        kept.add(items)
    assert len(kept) == 2  # the two before it, whole: the columns stay aligned
    assert len(kept.nums) == 2 * NUMS
    assert len(kept.objs) == 2 * OBJS
    assert kept.numbers()[:, ROW].tolist() == [-1.0, 7.0]  # rows looked up as taken
    assert kept.uids() == ["u0", "u1"]
    assert kept.objs[EID::OBJS] == ["e0", "e1"]
    assert kept.objs[SIDS::OBJS] == ["c0", "c1"]  # a lone subject id as the string itself
    assert kept.objs[UID] == "u0"


def test_off_hours_the_same_in_time_order_or_not() -> None:
    # minutes on both sides of the business hours' start (07:00 JST: T0 - 2 h) and end
    # (22:00), in order, then not: the reduction finds each minute's first event by runs (in
    # order) or by a sort (not)
    engine = make_engine()
    hours = engine.policy.business_hours
    assert hours is not None
    start, end = T0 - 2 * 3600.0, T0 + 13 * 3600.0
    times = [start - 61.0, start - 60.0, start - 1.0, start, start + 30.0, start + 59.9,
             start + 60.0, end - 1.0, end, end + 1.0, end + 60.0]
    want = sum(not hours.contains(t) for t in times)
    assert 0 < want < len(times)
    for order in (times, times[::-1], times[1::2] + times[::2]):
        docs = [event(t, "u0", f"e{i}", resource="crm.customers", ids=(f"c{i}",))
                for i, t in enumerate(order)]
        kept = Kept(engine.policy, {"u0": 0})
        kept.add([(e, e.timestamp.timestamp()) for e in map(decode, docs)])
        nums = kept.numbers()
        rows = reduce_events(kept, nums, [(0, 0)], np.zeros(len(kept), np.int64),
                             engine.policy)
        assert len(rows) == 1
        assert int(rows.small[0, 3]) == want  # the off-hours count


def test_subject_slots_the_same_on_every_path() -> None:
    # one id and no count, a count without ids (inlined in Kept.add) and the rest
    # (_slots): the same slots and counts as the general function gives
    cases: list[tuple[tuple[str, ...], int | None]] = [
        (("c1",), None), ((), None), ((), 0), ((), 1), ((), 5), ((), 63), ((), 64), ((), 65),
        ((), 1000), (("c1",), 0), (("c1",), 40), (("c1", "c2"), None), (("c1", "c2"), 1),
        (tuple(f"c{k}" for k in range(300)), None), (tuple(f"c{k}" for k in range(300)), 400)]
    docs = [event(T0 + i, "u0", f"e{i}", resource="crm.customers", ids=ids, count=count)
            for i, (ids, count) in enumerate(cases)]
    kept = Kept(make_engine().policy)
    kept.add([(e, e.timestamp.timestamp()) for e in map(decode, docs)])
    counts = kept.numbers()[:, COUNTS].tolist()
    for i, (ids, count) in enumerate(cases):
        n = len(ids) if count is None else count
        assert counts[i] == n
        assert kept.objs[i * OBJS + SUBJ] == (_slots(ids, f"e{i}", n) if n else 0)
    assert kept.objs[1 * OBJS + SUBJ] == 0  # no subjects
    assert kept.objs[2 * OBJS + SUBJ] == 0
    assert bin(kept.objs[4 * OBJS + SUBJ]).count("1") == 5  # distinct pseudo-random slots
    assert bin(kept.objs[6 * OBJS + SUBJ]).count("1") == 64  # every slot
