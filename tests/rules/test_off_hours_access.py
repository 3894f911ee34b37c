"""off_hours_access: business hours are [start, end) in the policy's time zone on the listed
weekdays; roles with after_hours: true are exempt."""

from __future__ import annotations

import dataclasses

import pytest

from tests.builders import event, login, only, policy, run

# 2026-11-18 is a Wednesday, 2026-11-21 a Saturday. Policy: Asia/Tokyo 08:00-20:00, Mon-Fri.


def fired(when: str, **kw):
    return only("off_hours_access", run(event(when=when, **kw)))


@pytest.mark.parametrize("when", [
    "2026-11-18T08:00:00+09:00",   # start is inclusive
    "2026-11-18T19:59:59+09:00",
    "2026-11-17T23:30:00Z",        # 08:30 Wednesday in Tokyo (Tuesday in UTC)
    "2026-11-18T10:59:59Z",        # 19:59:59 in Tokyo
])
def test_inside_business_hours_is_silent(when):
    assert run(event(when=when)) == []


@pytest.mark.parametrize("when", [
    "2026-11-18T07:59:59+09:00",
    "2026-11-18T20:00:00+09:00",   # end is exclusive
    "2026-11-18T11:00:00Z",        # 20:00 in Tokyo
    "2026-11-21T10:00:00+09:00",   # Saturday
    "2026-11-22T10:00:00+09:00",   # Sunday
    "2026-11-20T23:30:00Z",        # 08:30 Saturday in Tokyo (Friday in UTC)
])
def test_outside_business_hours_fires(when):
    alerts = run(event(when=when))
    assert [a.rule for a in alerts] == ["off_hours_access"]
    assert alerts[0].severity == "low"


def test_after_hours_role_is_silent():
    ev = event(when="2026-11-21T03:00:00+09:00", user="d1", purpose="maintenance",
               categories=["identity"])
    assert run(ev) == []


def test_login_off_hours_is_silent():
    assert run(login(when="2026-11-21T03:00:00+09:00")) == []


def test_listed_weekdays_follow_the_policy():
    pol = policy(business_hours={"weekdays": [6]})
    assert only("off_hours_access", run(event(when="2026-11-21T10:00:00+09:00"), pol)) == []
    assert len(only("off_hours_access", run(event(when="2026-11-18T10:00:00+09:00"), pol))) == 1


def test_policy_without_business_hours_is_silent():
    no_hours = dataclasses.replace(policy(), business_hours=None)
    assert only("off_hours_access", run(event(when="2026-11-21T03:00:00+09:00"),
                                        no_hours)) == []
