"""revoked_account: departed/suspended fire on everything from `effective` on; transferred only
for categories outside the new roles."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import BASE, at, directory, event, login, only, rules, run

LEFT = BASE  # the departure instant


def leaver(status: str = "departed", roles: list[str] | None = None):
    return [directory("e1", roles=["support_agent"]),
            directory("e1", status=status, effective=LEFT, roles=roles or [])]


def test_event_one_second_before_departure_is_silent():
    assert run(event(when=LEFT - timedelta(seconds=1)), dir_records=leaver()) == []


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(seconds=1), timedelta(days=30)])
def test_personal_access_at_or_after_departure_fires(delta):
    alerts = run(event(when=LEFT + delta), dir_records=leaver())
    # the role-based rules are superseded: one alert says the account should not act at all
    assert rules(alerts) == ["revoked_account"]
    a = alerts[0]
    assert a.severity == "critical"
    assert a.user_id == "e1"
    assert a.labels["status"] == "departed"
    assert a.clauses == ("Test §1 accounts of leavers are invalidated",)


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_departed_login_fires_success_or_failure(outcome):
    alerts = run(login(when=LEFT, outcome=outcome), dir_records=leaver())
    assert rules(alerts) == ["revoked_account"]
    assert "login" in alerts[0].summary


def test_departed_login_one_second_before_is_silent():
    assert run(login(when=LEFT - timedelta(seconds=1)), dir_records=leaver()) == []


def test_departed_logout_fires():
    assert rules(run(event(action="logout", data=False, when=at(hours=1)),
                     dir_records=leaver())) == ["revoked_account"]


def test_suspended_account_fires_on_login():
    alerts = run(login(when=at(minutes=5)), dir_records=leaver("suspended"))
    assert rules(alerts) == ["revoked_account"]
    assert alerts[0].labels["status"] == "suspended"


def test_reactivated_account_is_silent_again():
    recs = [*leaver("suspended"), directory("e1", effective=at(days=1))]
    assert run(event(when=at(days=1)), dir_records=recs) == []


# -- transferred ---------------------------------------------------------------------------

def transferred():
    return leaver("transferred", roles=["billing"])


def test_transferred_login_is_silent():
    assert run(login(when=at(hours=1)), dir_records=transferred()) == []


def test_transferred_access_within_new_roles_is_silent():
    ev = event(when=at(hours=1), categories=["identity", "payment"], purpose="billing")
    assert run(ev, dir_records=transferred()) == []


def test_transferred_access_outside_new_roles_fires():
    # address was allowed by the old role (support_agent), not by the new one (billing)
    ev = event(when=at(hours=1), categories=["identity", "address"], purpose="customer_support")
    alerts = run(ev, dir_records=transferred())
    assert rules(alerts) == ["revoked_account"]
    assert "address" in alerts[0].summary
    assert "identity" not in alerts[0].summary.split("touching")[1].split(",")[0]
    assert alerts[0].labels["status"] == "transferred"


def test_transferred_before_effective_uses_old_roles():
    ev = event(when=LEFT - timedelta(seconds=1), categories=["address"])
    assert run(ev, dir_records=transferred()) == []


def test_transferred_access_without_categories_is_silent():
    ev = event(when=at(hours=1), categories=None, purpose="billing")
    assert only("revoked_account", run(ev, dir_records=transferred())) == []


def test_active_account_is_silent():
    assert run(login(when=at(hours=1))) == []
