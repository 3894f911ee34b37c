"""external_email: personal data e-mailed to a domain neither internal nor an approved
processor's (for that purpose and those categories)."""

from __future__ import annotations

import pytest

from tests.builders import event, only, run


def mail(domain: str | None, *, action: str = "email", kind: str | None = "email", **kw):
    dest: dict[str, str] = {}
    if kind:
        dest["kind"] = kind
    if domain:
        dest["domain"] = domain
    return event(action=action, dest=dest, **kw)


@pytest.mark.parametrize("domain", ["example.co.jp", "mail.example.co.jp", "EXAMPLE.CO.JP"])
def test_internal_domain_and_subdomains_are_silent(domain):
    assert run(mail(domain)) == []


@pytest.mark.parametrize("domain", ["gmail.com", "notexample.co.jp", "example.co.jp.evil.com"])
def test_other_domains_fire(domain):
    alerts = run(mail(domain))
    assert [a.rule for a in alerts] == ["external_email"]
    assert alerts[0].severity == "high"
    assert alerts[0].labels["domain"] == domain


def test_approved_processor_for_purpose_and_categories_is_silent():
    assert run(mail("mailcloud.example")) == []
    assert run(mail("eu.mailcloud.example")) == []


def test_processor_domain_with_a_category_it_is_not_approved_for_fires():
    ev = mail("mailcloud.example", categories=["identity", "address"])
    assert len(only("external_email", run(ev))) == 1


def test_processor_domain_for_another_purpose_fires():
    ev = mail("payquick.example", purpose="customer_support")  # PayQuick: billing only
    assert len(only("external_email", run(ev))) == 1


def test_action_email_without_kind_counts():
    assert len(only("external_email", run(mail("gmail.com", kind=None)))) == 1


def test_kind_email_with_other_action_counts():
    assert len(only("external_email", run(mail("gmail.com", action="share")))) == 1


def test_email_without_a_domain_cannot_be_judged():
    assert only("external_email", run(mail(None))) == []


def test_email_without_personal_data_is_silent():
    ev = mail("gmail.com", categories=None, subject_ids=None, purpose=None)
    assert run(ev) == []


def test_a_processor_listed_once_per_purpose_is_approved_by_either_entry():
    from tests.builders import POLICY_DOC, policy
    procs = [{"name": "Mailer", "domains": ["mailer.example"], "purposes": ["billing"],
              "categories": ["identity", "contact", "payment"]},
             {"name": "Mailer", "domains": ["mailer.example"], "purposes": ["customer_support"],
              "categories": ["identity", "contact"]},
             *POLICY_DOC["processors"]]
    pol = policy(processors=procs)
    assert only("external_email", run(mail("mailer.example"), pol)) == []
    assert len(only("external_email", run(mail("mailer.example", purpose="analytics"),
                                          pol))) == 1
