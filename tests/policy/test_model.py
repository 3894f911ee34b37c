"""The compiled policy's lookups: business hours, processors, domains, networks."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.builders import policy
from watchdog.events import Destination
from watchdog.policy.model import BusinessHours, Processor, domain_in

TOKYO = ZoneInfo("Asia/Tokyo")


def ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


@pytest.mark.parametrize(("when", "inside"), [
    ("2026-11-18T08:00:00+09:00", True),
    ("2026-11-18T07:59:59.999+09:00", False),
    ("2026-11-18T19:59:59.999+09:00", True),
    ("2026-11-18T20:00:00+09:00", False),
    ("2026-11-21T12:00:00+09:00", False),  # Saturday
])
def test_business_hours_are_half_open_in_local_time(when, inside):
    hours = BusinessHours(TOKYO, 8 * 60, 20 * 60, frozenset({1, 2, 3, 4, 5}))
    assert hours.contains(ts(when)) is inside


def test_business_hours_follow_daylight_saving():
    ny = BusinessHours(ZoneInfo("America/New_York"), 9 * 60, 17 * 60, frozenset(range(1, 8)))
    # 13:30 UTC is 09:30 in summer (EDT) and 08:30 in winter (EST)
    assert ny.contains(ts("2026-07-01T13:30:00+00:00"))
    assert not ny.contains(ts("2026-12-01T13:30:00+00:00"))


def test_end_of_day_24_00():
    hours = BusinessHours(TOKYO, 0, 24 * 60, frozenset(range(1, 8)))
    assert hours.contains(ts("2026-11-18T23:59:59+09:00"))


@pytest.mark.parametrize(("domain", "inside"), [
    ("example.co.jp", True), ("a.b.example.co.jp", True), ("EXAMPLE.co.jp.", True),
    ("notexample.co.jp", False), ("example.co.jp.evil", False), ("co.jp", False),
])
def test_domain_matches_exactly_or_as_a_subdomain(domain, inside):
    assert domain_in(domain, ("example.co.jp",)) is inside


def test_processor_matches_by_organization_or_domain():
    p = Processor("PayQuick", domains=("payquick.example",))
    assert p.matches(Destination(organization="payquick"))
    assert p.matches(Destination(domain="api.payquick.example"))
    assert not p.matches(Destination(organization="PayQuick Ltd"))
    assert not p.matches(Destination())


def test_processor_approval_needs_the_purpose_and_every_category():
    p = Processor("P", purposes=frozenset({"billing"}),
                  categories=frozenset({"identity", "payment"}))
    assert p.approved_for("billing", ("identity", "payment"))
    assert p.approved_for("billing", ())
    assert not p.approved_for("billing", ("identity", "contact"))
    assert not p.approved_for("marketing", ("identity",))
    assert not p.approved_for(None, ("identity",))


def test_policy_approves_when_any_matching_entry_does():
    pol = policy(processors=[
        {"name": "X", "purposes": ["billing"], "categories": ["payment"]},
        {"name": "X", "purposes": ["customer_support"], "categories": ["contact"]},
    ])
    dest = Destination(organization="X")
    assert pol.approves(dest, "billing", ("payment",))
    assert pol.approves(dest, "customer_support", ("contact",))
    assert not pol.approves(dest, "customer_support", ("payment",))
    assert not pol.approves(Destination(organization="Y"), "billing", ("payment",))
    assert len(pol.processors_for(dest)) == 2


def test_cached_matches_belong_to_one_policy():
    """Matches are cached per destination; a copy of the policy with other processors (as
    dataclasses.replace makes) must not answer from the original's cache."""
    pol = policy(processors=[{"name": "X", "purposes": ["billing"], "categories": ["payment"]}])
    dest = Destination(organization="X")
    assert pol.approves(dest, "billing", ("payment",))
    assert pol.approves(dest, "billing", ("payment",))  # now from the cache
    other = dataclasses.replace(pol, processors=())
    assert not other.approves(dest, "billing", ("payment",))
    assert other.processor_for(dest) is None
    assert pol.processor_for(dest) is not None


@pytest.mark.parametrize(("ip", "internal"), [
    ("10.1.2.3", True), ("11.1.2.3", False), ("::1", False), ("localhost", None), ("", None),
])
def test_internal_ip(ip, internal):
    assert policy().is_internal_ip(ip) is internal


def test_roles_of_ignores_unknown_names():
    assert [r.name for r in policy().roles_of(("billing", "wizard"))] == ["billing"]
