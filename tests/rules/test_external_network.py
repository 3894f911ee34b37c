"""external_network: personal-data access from outside internal_networks."""

from __future__ import annotations

import pytest

from tests.builders import event, login, only, policy, run


@pytest.mark.parametrize("ip", ["10.0.0.1", "10.255.255.254"])
def test_internal_address_is_silent(ip):
    assert run(event(ip=ip)) == []


@pytest.mark.parametrize("ip", ["203.0.113.50", "11.0.0.1", "192.168.1.1", "2001:db8::1"])
def test_external_address_fires(ip):
    alerts = run(event(ip=ip))
    assert [a.rule for a in alerts] == ["external_network"]
    assert alerts[0].severity == "medium"
    assert ip in alerts[0].summary


def test_ipv6_internal_network():
    pol = policy(internal_networks=["10.0.0.0/8", "fd00::/8"])
    assert run(event(ip="fd12::1"), pol) == []


@pytest.mark.parametrize("ip", [None, "", "not-an-ip", "ws-0142"])
def test_missing_or_unparseable_address_is_not_judged(ip):
    assert only("external_network", run(event(ip=ip))) == []


def test_login_from_outside_is_silent():
    assert run(login(ip="203.0.113.50")) == []


def test_policy_without_internal_networks_is_silent():
    pol = policy(internal_networks=[])
    assert only("external_network", run(event(ip="203.0.113.50"), pol)) == []
