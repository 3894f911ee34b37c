"""marketing_opt_out: marketing use of a subject who opted out or withdrew consent."""

from __future__ import annotations

from tests.builders import at, event, only, run, subject

MKT = {"user": "m1", "purpose": "marketing", "categories": ["preferences"],
       "subject_ids": ["c-1"]}


def fired(recs, **kw):
    return only("marketing_opt_out", run(event(**{**MKT, **kw}), subjects=recs))


def test_no_record_is_silent():
    assert run(event(**MKT)) == []


def test_opt_out_fires():
    alerts = run(event(**MKT), subjects=[subject("c-1", "marketing_opt_out")])
    assert [a.rule for a in alerts] == ["marketing_opt_out"]
    assert alerts[0].severity == "high"
    assert alerts[0].subjects.count == 1


def test_opt_out_does_not_bind_other_purposes():
    assert fired([subject("c-1", "marketing_opt_out")], purpose="analytics") == []


def test_opt_out_later_than_the_event_is_silent():
    assert fired([subject("c-1", "marketing_opt_out", at(seconds=1))]) == []


def test_consent_withdrawn_for_marketing_fires():
    assert len(fired([subject("c-1", "consent_withdrawn", purposes=["marketing"])])) == 1


def test_consent_withdrawn_for_all_purposes_fires():
    assert len(fired([subject("c-1", "consent_withdrawn")])) == 1


def test_consent_withdrawn_for_another_purpose_is_silent():
    assert fired([subject("c-1", "consent_withdrawn", purposes=["analytics"])]) == []


def test_later_consent_granted_for_marketing_lifts_a_withdrawal():
    recs = [subject("c-1", "consent_withdrawn", at(days=-10), purposes=["marketing"]),
            subject("c-1", "consent_granted", at(days=-1), purposes=["marketing"])]
    assert fired(recs) == []


def test_earlier_consent_granted_does_not_lift_a_withdrawal():
    recs = [subject("c-1", "consent_granted", at(days=-10), purposes=["marketing"]),
            subject("c-1", "consent_withdrawn", at(days=-1), purposes=["marketing"])]
    assert len(fired(recs)) == 1


def test_consent_granted_for_another_purpose_does_not_lift():
    recs = [subject("c-1", "consent_withdrawn", at(days=-10)),
            subject("c-1", "consent_granted", at(days=-1), purposes=["billing"])]
    assert len(fired(recs)) == 1


def test_cleared_lifts_an_opt_out():
    recs = [subject("c-1", "marketing_opt_out", at(days=-10)),
            subject("c-1", "cleared", at(days=-1))]
    assert fired(recs) == []


def test_only_opted_out_subjects_are_counted():
    recs = [subject("c-1", "marketing_opt_out")]
    alerts = fired(recs, subject_ids=["c-1", "c-2", "c-3"])
    assert alerts[0].subjects.count == 1
