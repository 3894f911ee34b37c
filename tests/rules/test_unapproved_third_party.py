"""unapproved_third_party: personal data to a third party / cloud storage that is not a
processor approved for the purpose and every category, unless every subject consented."""

from __future__ import annotations

import pytest

from tests.builders import at, event, only, run, subject

BILLING = {"user": "e2", "purpose": "billing", "categories": ["identity", "payment"],
           "action": "transfer"}


def to(dest: dict[str, str], **kw):
    return event(dest={"kind": "third_party", **dest}, **{**BILLING, **kw})


def fired(ev, subjects=()):
    return only("unapproved_third_party", run(ev, subjects=subjects))


def test_approved_processor_by_organization_is_silent():
    assert run(to({"organization": "PayQuick", "country": "JP"})) == []


def test_approved_processor_by_domain_or_subdomain_is_silent():
    assert run(to({"domain": "payquick.example"})) == []
    assert run(to({"domain": "api.payquick.example"})) == []


@pytest.mark.parametrize("dest", [{"organization": "ShadyData"},
                                  {"domain": "shady.example"},
                                  {"domain": "payquick.example.shady.example"}])
def test_unapproved_recipient_fires(dest):
    alerts = fired(to(dest))
    assert len(alerts) == 1
    assert alerts[0].severity == "critical"
    assert "not an approved processor" in alerts[0].summary


def test_cloud_storage_counts_as_third_party():
    ev = event(dest={"kind": "cloud_storage", "domain": "files.shady.example"},
               **{**BILLING, "action": "copy"})
    assert len(fired(ev)) == 1


def test_approved_processor_for_another_purpose_fires():
    ev = event(dest={"kind": "third_party", "organization": "PayQuick"}, action="transfer")
    alerts = fired(ev)  # e1, customer_support: PayQuick is approved for billing only
    assert len(alerts) == 1
    assert "not approved for purpose customer_support" in alerts[0].summary


def test_approved_processor_with_a_category_outside_its_list_fires():
    ev = to({"organization": "PayQuick"}, categories=["identity", "purchase"])
    assert len(fired(ev)) == 1


def test_internal_destination_is_silent():
    assert fired(event(dest={"kind": "internal", "organization": "ShadyData"})) == []


CONSENTED = [subject("c-1", "consent_granted", purposes=["billing"]),
             subject("c-2", "consent_granted", purposes=["billing", "marketing"])]


def test_every_subject_consented_for_the_purpose_is_silent():
    ev = to({"organization": "ShadyData"}, subject_ids=["c-1", "c-2"])
    assert fired(ev, CONSENTED) == []


def test_one_subject_not_consented_fires():
    ev = to({"organization": "ShadyData"}, subject_ids=["c-1", "c-2", "c-3"])
    alerts = fired(ev, CONSENTED)
    assert len(alerts) == 1
    assert alerts[0].subjects.count == 3


def test_consent_for_another_purpose_does_not_count():
    ev = to({"organization": "ShadyData"}, subject_ids=["c-2"], purpose="analytics")
    assert len(fired(ev, CONSENTED)) == 1


def test_withdrawn_consent_does_not_count():
    recs = [*CONSENTED, subject("c-1", "consent_withdrawn", effective=at(hours=-1),
                                purposes=["billing"])]
    ev = to({"organization": "ShadyData"}, subject_ids=["c-1", "c-2"])
    assert len(fired(ev, recs)) == 1


def test_bare_subject_count_cannot_show_consent():
    ev = to({"organization": "ShadyData"}, subject_ids=["c-1", "c-2"], subject_count=5)
    assert len(fired(ev, CONSENTED)) == 1


def test_a_processor_listed_once_per_purpose_is_approved_by_either_entry():
    # one processor, two entries: payment data for billing, contact data for support
    from tests.builders import POLICY_DOC, policy
    procs = [*POLICY_DOC["processors"],
             {"name": "PayQuick", "domains": ["payquick.example"],
              "purposes": ["customer_support"], "categories": ["contact"], "country": "JP"}]
    pol = policy(processors=procs)
    billing = to({"organization": "PayQuick"})
    support = event(dest={"kind": "third_party", "organization": "PayQuick"},
                    action="transfer", categories=["contact"])
    assert only("unapproved_third_party", run(billing, pol)) == []
    assert only("unapproved_third_party", run(support, pol)) == []
    # and neither entry approves payment data for support
    support_payment = event(dest={"kind": "third_party", "organization": "PayQuick"},
                            action="transfer", categories=["payment"])
    assert len(only("unapproved_third_party", run(support_payment, pol))) == 1
