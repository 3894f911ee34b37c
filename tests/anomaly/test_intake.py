"""The intake: events taken apart into two flat lists, all of an event's values or none."""

from __future__ import annotations

import pytest

from tests.anomaly.conftest import T0, decode, event, make_engine
from watchdog.anomaly.intake import EID, NUMS, OBJS, ROW, SIDS, UID, Kept
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
