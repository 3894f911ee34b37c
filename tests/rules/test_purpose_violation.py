"""purpose_violation: a missing purpose, or a category the roles allow but not for that
purpose (categories no role allows are category_not_permitted's)."""

from __future__ import annotations

from tests.builders import directory, event, only, rules, run


def test_allowed_category_for_an_allowed_purpose_is_silent():
    assert run(event(categories=["identity", "purchase"], purpose="customer_support")) == []


def test_missing_purpose_fires():
    alerts = run(event(purpose=None))
    assert rules(alerts) == ["purpose_violation"]
    assert alerts[0].severity == "medium"
    assert "without a stated purpose" in alerts[0].summary
    assert alerts[0].labels["purpose"] == "(none)"


def test_missing_purpose_without_categories_fires():
    ev = event(categories=None, subject_ids=["c-1"], purpose=None)
    assert rules(run(ev)) == ["purpose_violation"]


def test_wrong_purpose_fires():
    alerts = run(event(purpose="billing"))  # support_agent: customer_support only
    assert rules(alerts) == ["purpose_violation"]
    assert "billing" in alerts[0].summary
    assert alerts[0].labels["purpose"] == "billing"


def test_unknown_purpose_without_categories_fires():
    assert rules(run(event(categories=None, purpose="fun"))) == ["purpose_violation"]


def test_category_not_allowed_for_the_purpose_by_any_role_holding_it():
    # e3 holds support_agent and billing: purchase is allowed, but only for customer_support
    recs = [directory("e3", roles=["support_agent", "billing"])]
    ok = event(user="e3", categories=["identity", "payment"], purpose="billing")
    assert run(ok, dir_records=recs) == []
    bad = event(user="e3", categories=["identity", "purchase"], purpose="billing")
    alerts = run(bad, dir_records=recs)
    assert rules(alerts) == ["purpose_violation"]
    assert "for purchase" in alerts[0].summary


def test_both_rules_only_for_different_categories():
    # identity: allowed, but not for billing -> purpose_violation;
    # payment: no role allows it -> category_not_permitted
    alerts = run(event(categories=["identity", "payment"], purpose="billing"))
    assert rules(alerts) == ["category_not_permitted", "purpose_violation"]
    pv = only("purpose_violation", alerts)[0]
    assert "identity" in pv.summary
    assert "payment" not in pv.summary
    assert only("category_not_permitted", alerts)[0].labels["categories"] == "payment"


def test_missing_purpose_with_only_unpermitted_categories_is_category_not_permitted_only():
    assert rules(run(event(categories=["payment"], purpose=None))) == ["category_not_permitted"]


def test_unpermitted_category_with_right_purpose_is_not_a_purpose_violation():
    alerts = run(event(categories=["identity", "payment"]))
    assert rules(alerts) == ["category_not_permitted"]


def test_no_personal_data_is_silent():
    assert run(event(categories=None, subject_ids=None, purpose=None)) == []
