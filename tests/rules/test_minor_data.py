"""minor_data: a minor's data processed for a purpose not in minor_allowed_purposes."""

from __future__ import annotations

from tests.builders import at, event, only, run, subject

MINOR = [subject("c-1", "minor")]


def test_minor_for_a_disallowed_purpose_fires():
    ev = event(user="m1", purpose="marketing", categories=["preferences"])
    alerts = run(ev, subjects=MINOR)
    assert [a.rule for a in alerts] == ["minor_data"]
    assert alerts[0].severity == "high"
    assert alerts[0].labels["purpose"] == "marketing"


def test_minor_for_an_allowed_purpose_is_silent():
    assert run(event(purpose="customer_support"), subjects=MINOR) == []


def test_adult_is_silent():
    ev = event(user="m1", purpose="marketing", categories=["preferences"], subject_ids=["c-2"])
    assert run(ev, subjects=MINOR) == []


def test_minor_without_a_purpose_fires():
    assert len(only("minor_data", run(event(purpose=None), subjects=MINOR))) == 1


def test_minor_marking_after_the_event_is_silent():
    ev = event(user="m1", purpose="marketing", categories=["preferences"])
    assert run(ev, subjects=[subject("c-1", "minor", at(minutes=1))]) == []


def test_minor_accumulates_with_other_states():
    recs = [subject("c-1", "minor", at(days=-2)), subject("c-1", "marketing_opt_out", at(days=-1))]
    ev = event(user="m1", purpose="marketing", categories=["preferences"])
    assert sorted(a.rule for a in run(ev, subjects=recs)) == ["marketing_opt_out", "minor_data"]
