"""reidentification: anonymised and identified data of one family within the window, by one
account, in either order."""

from __future__ import annotations

import pytest

from tests.builders import at, event, only, run

MKT = {"user": "m1", "purpose": "analytics", "categories": ["behavior"]}


def anon(resource: str = "dwh.events_anon", **kw):
    return event(resource=resource, anonymized=True, subject_ids=None, subject_count=5000,
                 **{**MKT, **kw})


def ident(resource: str = "dwh.customers", **kw):
    return event(resource=resource, **{**MKT, **kw})


def fired(evs):
    return only("reidentification", run(evs))


@pytest.mark.parametrize("order", ["anon_first", "identified_first"])
def test_both_kinds_within_the_window_fire(order):
    first, second = ((anon(when=at()), ident(when=at(minutes=30))) if order == "anon_first"
                     else (ident(when=at()), anon(when=at(minutes=30))))
    alerts = fired([first, second])
    assert len(alerts) == 1
    a = alerts[0]
    assert a.severity == "high"
    assert a.event_ids == (first.event.id, second.event.id)
    assert a.labels["family"] == "dwh"


def test_outside_the_window_is_silent():
    assert fired([anon(when=at()), ident(when=at(minutes=61))]) == []
    assert fired([ident(when=at()), anon(when=at(minutes=61))]) == []


def test_window_follows_the_policy():
    from tests.builders import policy
    pol = policy(thresholds={"reidentification_window_minutes": 120})
    evs = [anon(when=at()), ident(when=at(minutes=90))]
    assert len(only("reidentification", run(evs, pol))) == 1


def test_different_family_is_silent():
    assert fired([anon(when=at()), ident("crm.customers", when=at(minutes=5))]) == []


def test_different_accounts_are_silent():
    evs = [anon(when=at()), ident(when=at(minutes=5), user="e1", purpose="customer_support",
                                  categories=["identity"])]
    assert fired(evs) == []


def test_anonymised_only_or_identified_only_is_silent():
    assert fired([anon(when=at()), anon("dwh.other_anon", when=at(minutes=1))]) == []
    assert fired([ident(when=at()), ident(when=at(minutes=1))]) == []


def test_family_of_a_resource_without_a_dot_is_the_name():
    assert len(fired([anon("dwh", when=at()), ident("dwh", when=at(minutes=1))])) == 1
    assert fired([anon("dwh", when=at()), ident("dwhx", when=at(minutes=1))]) == []


def test_a_pair_is_consumed_by_its_alert():
    evs = [anon(when=at()), ident(when=at(minutes=1)), ident(when=at(minutes=2))]
    assert len(fired(evs)) == 1
    evs.append(anon(when=at(minutes=3)))
    assert len(fired(evs)) == 2


def test_anonymised_access_without_personal_markers_still_counts():
    # an anonymised extract need not name categories or subjects to be collated
    bare = event(user="m1", resource="dwh.events_anon", anonymized=True, categories=None,
                 subject_ids=None, purpose="analytics", when=at())
    assert not bare.is_personal
    alerts = fired([bare, ident(when=at(minutes=10))])
    assert len(alerts) == 1
    assert alerts[0].event_ids[0] == bare.event.id


def test_identified_side_must_be_personal_data():
    bare = event(user="m1", resource="dwh.customers", categories=None, subject_ids=None,
                 purpose="analytics", when=at(minutes=10))
    assert fired([anon(when=at()), bare]) == []
