"""Reorderer.expect (added for the daemon): a partition assigned but not yet heard from holds
the watermark, so a slow first fetch cannot make its events late."""

from __future__ import annotations

from datetime import UTC, datetime

from watchdog.engine.ordering import Reorderer
from watchdog.events import AccessEvent, EventInfo, User


def ev(i: int, t: float) -> AccessEvent:
    return AccessEvent(datetime.fromtimestamp(t, UTC), EventInfo(f"e{i}", "login"), User("u"))


def test_an_expected_partition_holds_the_watermark_until_it_speaks_or_idles() -> None:
    r = Reorderer(lateness=0)
    r.expect({0, 1})
    assert r.push(ev(1, 100.0), 100.0, 0) == []
    assert r.push(ev(2, 200.0), 200.0, 0) == []  # partition 1 may still bring older events
    late = r.push(ev(3, 150.0), 150.0, 1)  # it does: nothing was released ahead of it
    assert [e.event.id for e, _ in late] == ["e1", "e3"]
    assert r.stats.late == 0
    assert [e.event.id for e, _ in r.idle(1)] == ["e2"]


def test_expect_keeps_what_a_partition_already_said() -> None:
    r = Reorderer(lateness=0)
    r.push(ev(1, 100.0), 100.0, 0)
    r.expect({0})
    assert r.watermark() == 100.0
