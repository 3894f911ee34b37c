"""cross_border_transfer: a destination country outside the adequate ones, without
safeguards; applies to any destination with a country."""

from __future__ import annotations

import pytest

from tests.builders import event, only, policy, run

SUPPORT = {"action": "transfer"}


def fired(ev, pol=None):
    return only("cross_border_transfer", run(ev, pol))


def test_processor_with_scc_outside_adequate_countries_is_silent():
    ev = event(dest={"kind": "third_party", "organization": "MailCloud", "country": "US"},
               **SUPPORT)
    assert run(ev) == []


def test_processor_without_safeguards_outside_adequate_countries_fires():
    # CheapHost is an approved processor (no unapproved_third_party) but has no safeguards
    ev = event(dest={"kind": "third_party", "organization": "CheapHost", "country": "US"},
               **SUPPORT)
    alerts = run(ev)
    assert [a.rule for a in alerts] == ["cross_border_transfer"]
    assert alerts[0].severity == "high"
    assert alerts[0].labels["country"] == "US"


def test_adequate_country_is_silent():
    ev = event(dest={"kind": "third_party", "organization": "CheapHost", "country": "DE"},
               **SUPPORT)
    assert run(ev) == []


def test_processor_matched_by_domain_with_scc_is_silent():
    ev = event(dest={"kind": "third_party", "domain": "eu.mailcloud.example", "country": "US"},
               **SUPPORT)
    assert fired(ev) == []


@pytest.mark.parametrize("kind", ["email", "internal", "cloud_storage", "print"])
def test_any_destination_with_a_country_counts(kind):
    ev = event(action="copy", dest={"kind": kind, "domain": "x.example", "country": "CN"})
    assert len(fired(ev)) == 1


def test_destination_without_a_country_is_silent():
    assert fired(event(dest={"kind": "third_party", "organization": "X"}, **SUPPORT)) == []


def test_unknown_recipient_outside_adequate_countries_fires():
    ev = event(dest={"kind": "third_party", "organization": "ShadyData", "country": "US"},
               **SUPPORT)
    assert len(fired(ev)) == 1


def test_no_personal_data_is_silent():
    ev = event(dest={"kind": "third_party", "organization": "CheapHost", "country": "US"},
               categories=None, subject_ids=None, purpose=None, **SUPPORT)
    assert run(ev) == []


def test_policy_without_adequate_countries_states_no_regime():
    ev = event(dest={"kind": "third_party", "organization": "CheapHost", "country": "US"},
               **SUPPORT)
    assert fired(ev, policy(adequate_countries=[])) == []


def test_safeguards_of_any_entry_of_the_matching_processor_count():
    from tests.builders import POLICY_DOC
    procs = [{"name": "GlobalCloud", "purposes": ["billing"], "categories": ["identity"]},
             {"name": "GlobalCloud", "purposes": ["customer_support"],
              "categories": ["identity", "contact"], "safeguards": "SCC"},
             *POLICY_DOC["processors"]]
    ev = event(dest={"kind": "third_party", "organization": "GlobalCloud", "country": "US"},
               **SUPPORT)
    assert run(ev, policy(processors=procs)) == []
