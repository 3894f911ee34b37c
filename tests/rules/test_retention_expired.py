"""retention_expired: processing a record older (strictly) than its category's retention."""

from __future__ import annotations

from datetime import timedelta, timezone

from tests.builders import BASE, event, only, run

PURCHASE_DAYS = 1825


def old(age: timedelta, **kw):
    kw.setdefault("categories", ["identity", "purchase"])
    return event(collected_at=BASE - age, **kw)


def test_age_of_exactly_the_retention_is_silent():
    assert run(old(timedelta(days=PURCHASE_DAYS))) == []


def test_age_strictly_over_the_retention_fires():
    alerts = run(old(timedelta(days=PURCHASE_DAYS, seconds=1)))
    assert [a.rule for a in alerts] == ["retention_expired"]
    assert alerts[0].severity == "medium"
    assert alerts[0].labels["categories"] == "purchase"


def test_categories_without_a_retention_period_are_silent():
    assert run(old(timedelta(days=10000), categories=["identity", "contact"])) == []


def test_the_shortest_expired_category_is_named():
    alerts = only("retention_expired", run(old(timedelta(days=400),
                                               categories=["behavior", "purchase"])))
    assert alerts[0].labels["categories"] == "behavior"


def test_delete_of_an_expired_record_is_silent():
    assert run(old(timedelta(days=4000), action="delete")) == []


def test_no_collected_at_is_silent():
    assert run(event(categories=["purchase"])) == []


def test_offsets_are_respected():
    # collected exactly 1825 days before, written in +09:00: still exactly the retention
    tokyo = timezone(timedelta(hours=9))
    ev = event(categories=["purchase"],
               collected_at=(BASE - timedelta(days=PURCHASE_DAYS)).astimezone(tokyo))
    assert ev.data.collected_at.utcoffset() == timedelta(hours=9)
    assert run(ev) == []
