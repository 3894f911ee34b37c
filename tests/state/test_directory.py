"""The directory on event time: a record applies from its `effective` instant on, including to
an event with the same timestamp, and never before."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import BASE, directory, event, rules, run
from watchdog.events import epoch
from watchdog.state.directory import Directory

T10 = BASE  # 10:00 Tokyo


def test_record_does_not_affect_an_earlier_event_and_does_affect_the_same_instant():
    d = Directory()
    d.apply(directory("e1", effective=T10 - timedelta(days=30)))
    d.apply(directory("e1", "departed", effective=T10, roles=[]))
    assert d.at("e1", epoch(T10) - 60).status == "active"  # 09:59
    assert d.at("e1", epoch(T10) - 0.001).status == "active"
    assert d.at("e1", epoch(T10)).status == "departed"  # 10:00
    assert d.at("e1", epoch(T10) + 3600).status == "departed"


def test_same_timestamp_applies_before_the_event_in_the_engine():
    recs = [directory("e1", effective=T10 - timedelta(days=30)),
            directory("e1", "departed", effective=T10, roles=[])]
    assert run(event(when=T10 - timedelta(minutes=1)), dir_records=recs) == []
    assert rules(run(event(when=T10), dir_records=recs)) == ["revoked_account"]


def test_unknown_account_and_before_the_first_record():
    d = Directory()
    assert d.at("nobody", epoch(T10)) is None
    d.apply(directory("e1", effective=T10))
    assert d.at("e1", epoch(T10) - 1) is None
    assert d.at("e1", epoch(T10)) is not None
    assert len(d) == 1


def test_late_record_answers_for_earlier_times():
    # the HR feed sends the departure after the events it governs were seen
    d = Directory()
    d.apply(directory("e1", effective=T10 - timedelta(days=30)))
    assert d.at("e1", epoch(T10) + 60).status == "active"
    d.apply(directory("e1", "suspended", effective=T10, roles=[]))
    assert d.at("e1", epoch(T10) - 1).status == "active"
    assert d.at("e1", epoch(T10) + 60).status == "suspended"


def test_same_instant_the_later_read_record_wins():
    d = Directory()
    d.apply(directory("e1", "active", effective=T10))
    d.apply(directory("e1", "departed", effective=T10, roles=[]))
    assert d.at("e1", epoch(T10)).status == "departed"


def test_accounts_are_independent():
    d = Directory()
    d.apply(directory("e1", "departed", effective=T10, roles=[]))
    d.apply(directory("e2", effective=T10))
    assert d.at("e2", epoch(T10)).status == "active"


def test_compact_keeps_the_record_in_force():
    d = Directory()
    for i in range(5):
        d.apply(directory("e1", effective=T10 + timedelta(days=i), roles=[f"r{i}"]))
    dropped = d.compact(epoch(T10 + timedelta(days=2, hours=1)))
    assert dropped == 2
    assert d.at("e1", epoch(T10 + timedelta(days=2, hours=1))).roles == ("r2",)
    assert d.at("e1", epoch(T10 + timedelta(days=4))).roles == ("r4",)


def test_record_effective_in_another_offset_is_the_same_instant():
    d = Directory()
    d.apply(directory("e1", "departed", effective="2026-11-18T10:00:00+09:00", roles=[]))
    assert d.at("e1", epoch(T10) - 1) is None
    assert d.at("e1", epoch(T10)).status == "departed"
