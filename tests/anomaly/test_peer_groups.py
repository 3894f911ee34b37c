"""Peer groups from the directory, looked up again only when the record in force may have
changed (watchdog.anomaly.peer_groups.DirectoryGroups): the same groups as a lookup per account and
hour, through moves that take effect mid-hour, records applied late (retroactive) and a
directory that drops superseded records."""

from __future__ import annotations

import msgspec

from tests.anomaly.conftest import T0, decode, event, make_engine, ts
from watchdog.anomaly.featurizer import Featurizer
from watchdog.anomaly.peer_groups import DirectoryGroups, group_key
from watchdog.events import DirectoryRecord

HOUR = 3600.0


def _move(user: str, dept: str, t: float) -> DirectoryRecord:
    return msgspec.convert({"user_id": user, "status": "active", "effective": ts(t),
                            "roles": ["agent"], "department": dept}, DirectoryRecord)


def test_cached_groups_are_the_groups_looked_up_every_hour() -> None:
    engine = make_engine(8)
    engine.apply_directory(_move("u001", "legal", T0 + 3.5 * HOUR))  # mid-hour, ahead
    cached = Featurizer(engine.policy, DirectoryGroups(engine), warmup=0.0)
    looked = Featurizer(engine.policy, lambda u, t: group_key(engine.directory.at(u, t)),
                        warmup=0.0)
    seen: dict[str, set[str]] = {}
    for k in range(12 * 6):  # every 10 minutes for 12 hours, five accounts
        t = T0 + k * 600.0 + 30.0
        if k == 6 * 6:  # late: u002 moved two hours ago; u003 moves in an hour
            engine.apply_directory(_move("u002", "finance", T0 + 4 * HOUR))
            engine.apply_directory(_move("u003", "finance", T0 + 7.2 * HOUR))
        if k == 9 * 6:
            engine.directory.compact(T0 + 5 * HOUR)
        for u in range(5):
            ev = decode(event(t + u, f"u{u:03d}", f"e{k}-{u}", resource="crm.customers"))
            a = cached.observe(ev, ev.timestamp.timestamp())
            b = looked.observe(ev, ev.timestamp.timestamp())
            assert (a is None) == (b is None)
            if a is not None and b is not None:
                names = [a.group_names[g] for g in a.gids.tolist()]
                assert a.users == b.users
                assert names == [b.group_names[g] for g in b.gids.tolist()]
                for user, name in zip(a.users, names, strict=True):
                    seen.setdefault(user, set()).add(name)
    assert len(seen["u001"]) == 2  # the groups did change
    assert len(seen["u002"]) == 2
    assert len(seen["u003"]) == 2
    assert len(seen["u004"]) == 1
