"""bulk_export: per event (> bulk_export_subjects) and per account within (t-60 min, t]."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import at, event, only, policy, run

ACTIONS = ["export", "download", "copy", "print", "transfer"]


def export(n: int | None = None, *, ids: list[str] | None = None, **kw):
    kw.setdefault("action", "export")
    return event(subject_count=n, subject_ids=ids, **kw)


def bulk(events, pol=None):
    return only("bulk_export", run(events, pol))


def test_export_of_exactly_the_threshold_is_silent():
    assert run(export(500)) == []
    assert run(export(ids=[f"c-{i}" for i in range(500)])) == []


@pytest.mark.parametrize("action", ACTIONS)
def test_export_over_the_threshold_fires(action):
    alerts = bulk(export(501, action=action))
    assert len(alerts) == 1
    assert alerts[0].severity == "critical"
    assert alerts[0].subjects.count == 501
    assert "501 subjects" in alerts[0].summary


def test_subject_ids_over_the_threshold_fire():
    alerts = bulk(export(ids=[f"c-{i}" for i in range(501)]))
    assert len(alerts) == 1
    assert alerts[0].subjects.count == 501


@pytest.mark.parametrize("action", ["read", "search", "update", "email", "share"])
def test_other_actions_do_not_count(action):
    assert bulk(export(5000, action=action)) == []


def hourly(n: int = 1000):
    return policy(thresholds={"bulk_export_subjects": 500, "bulk_export_subjects_per_hour": n})


def test_hourly_crossing_fires_on_the_completing_event():
    evs = [export(500, when=at(minutes=0)), export(500, when=at(minutes=10)),
           export(1, when=at(minutes=59, seconds=59))]
    alerts = bulk(evs, hourly())
    assert len(alerts) == 1
    a = alerts[0]
    assert a.event_ids[-1] == evs[-1].event.id
    assert set(a.event_ids) == {e.event.id for e in evs}
    assert a.subjects.count == 1001
    assert "1001 distinct subjects" in a.summary


def test_hourly_at_exactly_the_limit_is_silent():
    assert bulk([export(500, when=at()), export(500, when=at(minutes=30))], hourly()) == []


def test_event_exactly_60_minutes_later_does_not_count_the_old_one():
    evs = [export(500, when=at(minutes=0)), export(500, when=at(minutes=10)),
           export(1, when=at(minutes=60))]
    assert bulk(evs, hourly()) == []


def test_distinct_subjects_count_once():
    ids = [f"c-{i}" for i in range(400)]
    more = [f"n-{i}" for i in range(101)]
    pol = hourly(500)
    assert bulk([export(ids=ids, when=at()), export(ids=ids, when=at(minutes=1))], pol) == []
    alerts = bulk([export(ids=ids, when=at()), export(ids=ids, when=at(minutes=1)),
                   export(ids=more, when=at(minutes=2))], pol)
    assert len(alerts) == 1
    assert alerts[0].subjects.count == 501


def test_subject_count_only_events_add_that_many():
    evs = [export(300, when=at(minutes=i)) for i in range(4)]  # 1200 > 1000
    alerts = bulk(evs, hourly())
    assert [a.event_ids[-1] for a in alerts] == [evs[3].event.id]


def test_one_alert_per_crossing():
    pol = hourly()
    evs = [export(400, when=at(minutes=i)) for i in range(6)]  # crosses at the 3rd
    # then quiet for over an hour (back under), then a second crossing
    evs += [export(400, when=at(minutes=120 + i)) for i in range(3)]
    alerts = bulk(evs, pol)
    assert [a.event_ids[-1] for a in alerts] == [evs[2].event.id, evs[8].event.id]


def test_accounts_are_counted_separately():
    evs = [export(400, when=at()), export(400, user="e2", when=at(minutes=1), purpose="billing"),
           export(400, when=at(minutes=2), user="m1", purpose="marketing",
                  categories=["contact"])]
    assert bulk(evs, hourly()) == []


def test_other_actions_do_not_add_to_the_hourly_count():
    evs = [export(500, when=at()), export(500, action="read", when=at(minutes=1)),
           export(100, when=at(minutes=2))]
    assert bulk(evs, hourly()) == []


def dba_export(n: int, **kw):
    return export(n, user="d1", purpose="maintenance", categories=["identity"], **kw)


def test_bulk_export_role_has_no_per_event_limit():
    assert run(dba_export(5000)) == []
    assert len(bulk(export(5000))) == 1  # the same export by an ordinary role


def test_bulk_export_role_has_ten_times_the_hourly_limit():
    # hourly 2000 -> 20000 for the role
    assert bulk([dba_export(20000)]) == []
    alerts = bulk([dba_export(20000), dba_export(1, when=at(minutes=1))])
    assert len(alerts) == 1
    assert "limit 20000" in alerts[0].summary


def test_window_drops_old_subjects_exactly_at_60_minutes():
    pol = hourly(2)
    evs = [export(ids=["a"], when=at()), export(ids=["b"], when=at(minutes=30)),
           export(ids=["c"], when=at(minutes=60))]
    assert bulk(evs, pol) == []
    evs[-1] = export(ids=["c"], when=at(minutes=60) - timedelta(seconds=1))
    assert len(bulk(evs, pol)) == 1
