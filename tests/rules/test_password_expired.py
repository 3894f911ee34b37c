"""password_expired: a successful login with a password older than the policy allows, once
per account and ``password_changed_at``."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import BASE, account, login, only, run


def fired(logins, accounts):
    return only("password_expired", run(logins, accounts=accounts))


def test_a_password_over_90_days_old_fires():
    accts = [account("e1", True, BASE - timedelta(days=200),
                     password_changed_at=BASE - timedelta(days=90, seconds=1))]
    alerts = fired([login(when=BASE)], accts)
    assert len(alerts) == 1
    assert alerts[0].severity == "medium"


def test_a_password_89_days_old_is_silent():
    accts = [account("e1", True, BASE - timedelta(days=200),
                     password_changed_at=BASE - timedelta(days=89))]
    assert fired([login(when=BASE)], accts) == []


def test_exactly_90_days_is_silent():
    accts = [account("e1", True, BASE - timedelta(days=200),
                     password_changed_at=BASE - timedelta(days=90))]
    assert fired([login(when=BASE)], accts) == []


def test_a_failed_login_is_silent():
    accts = [account("e1", True, BASE - timedelta(days=200),
                     password_changed_at=BASE - timedelta(days=100))]
    assert fired([login(when=BASE, outcome="failure")], accts) == []


def test_one_alert_per_account_and_change():
    accts = [account("e1", True, BASE - timedelta(days=200),
                     password_changed_at=BASE - timedelta(days=100)),
             account("e1", True, BASE + timedelta(hours=2),
                     password_changed_at=BASE - timedelta(days=95))]
    logins = [login(when=BASE), login(when=BASE + timedelta(hours=1)),
              login(when=BASE + timedelta(hours=3)), login(when=BASE + timedelta(hours=4))]
    assert len(fired(logins, accts)) == 2


def test_a_record_without_password_changed_at_carries_nothing_over():
    accts = [account("e1", True, BASE - timedelta(days=200),
                     password_changed_at=BASE - timedelta(days=100)),
             account("e1", True, BASE - timedelta(hours=1))]
    assert fired([login(when=BASE)], accts) == []
