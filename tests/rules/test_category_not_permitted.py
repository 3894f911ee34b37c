"""category_not_permitted: a category none of the actor's roles allows."""

from __future__ import annotations

import pytest

from tests.builders import directory, event, only, rules, run


def test_allowed_categories_are_silent():
    assert run(event(categories=["identity", "contact", "address", "purchase"])) == []


@pytest.mark.parametrize("cat", ["payment", "my_number", "health"])
def test_category_no_role_allows_fires(cat):
    alerts = run(event(categories=["identity", cat]))
    assert rules(alerts) == ["category_not_permitted"]
    assert alerts[0].severity == "high"
    assert alerts[0].labels["categories"] == cat
    assert cat in alerts[0].summary


def test_any_role_allowing_the_category_is_enough():
    recs = [directory("e3", roles=["support_agent", "billing"])]
    ev = event(user="e3", categories=["payment"], purpose="billing")
    assert only("category_not_permitted", run(ev, dir_records=recs)) == []


def test_directory_roles_win_over_claimed_roles():
    ev = event(categories=["payment"], roles=["billing"], purpose="billing")
    assert len(only("category_not_permitted", run(ev))) == 1


def test_account_without_roles_in_the_directory_gets_nothing():
    recs = [directory("e4", roles=[])]
    alerts = run(event(user="e4"), dir_records=recs)
    assert only("category_not_permitted", alerts)[0].labels["categories"] == "contact,identity"


def test_role_unknown_to_the_policy_grants_nothing():
    recs = [directory("e4", roles=["wizard"])]
    assert len(only("category_not_permitted", run(event(user="e4"), dir_records=recs))) == 1
