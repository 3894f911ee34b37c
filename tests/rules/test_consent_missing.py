"""consent_missing: processing for a consent-based purpose without the subject's consent."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import BASE, event, only, policy, policy_doc, run, subject
from watchdog.policy import parse_policy

POL = policy(consent_purposes=["marketing", "analytics"],
             roles={"marketer": {"categories": ["identity", "contact", "preferences",
                                                "behavior"],
                                 "purposes": ["marketing", "analytics"]}})
EARLIER = BASE - timedelta(days=1)


def fired(recs, purpose="analytics", pol=POL):
    ev = event(user="m1", purpose=purpose, subject_ids=["c-1"], categories=["preferences"])
    return only("consent_missing", run(ev, pol, subjects=recs))


def test_consent_withdrawn_fires():
    alerts = fired([subject("c-1", "consent_withdrawn", EARLIER, ["analytics"])])
    assert len(alerts) == 1
    assert alerts[0].severity == "high"


def test_consent_withdrawn_for_another_purpose_is_silent():
    assert fired([subject("c-1", "consent_withdrawn", EARLIER, ["billing"])]) == []


def test_consent_granted_again_is_silent():
    recs = [subject("c-1", "consent_withdrawn", EARLIER, ["analytics"]),
            subject("c-1", "consent_granted", EARLIER + timedelta(hours=1), ["analytics"])]
    assert fired(recs) == []


def test_a_purpose_not_based_on_consent_is_silent():
    pol = policy(consent_purposes=["marketing"])
    assert fired([subject("c-1", "consent_withdrawn", EARLIER)], pol=pol) == []


def test_opt_in_needs_a_grant():
    pol = policy(consent_purposes=["analytics"], consent_opt_in=True)
    assert len(fired([], pol=pol)) == 1
    assert fired([subject("c-1", "consent_granted", EARLIER, ["analytics"])], pol=pol) == []


def test_not_raised_with_marketing_opt_out():
    ev = event(user="m1", purpose="marketing", subject_ids=["c-1"], categories=["preferences"])
    alerts = run(ev, POL, subjects=[subject("c-1", "consent_withdrawn", EARLIER)])
    assert [a.rule for a in alerts] == ["marketing_opt_out"]


def test_raised_when_marketing_opt_out_is_off():
    doc = policy_doc(consent_purposes=["marketing"],
                     commitments=[{"id": "C-1", "clause": "§1", "rules": ["consent_missing"]}])
    del doc["clauses"]
    pol = parse_policy(doc, "test-policy")
    ev = event(user="m1", purpose="marketing", subject_ids=["c-1"], categories=["preferences"])
    alerts = run(ev, pol, subjects=[subject("c-1", "consent_withdrawn", EARLIER)])
    assert [a.rule for a in alerts] == ["consent_missing"]
