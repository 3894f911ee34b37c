"""subject_restricted: anything but `delete` of a subject under erasure/suspension/restriction,
from its effective time plus the grace period on; `cleared` lifts it."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from tests.builders import BASE, at, event, only, policy, run, subject

REQUESTED = BASE - timedelta(hours=1)


def fired(ev, recs, pol=None):
    return only("subject_restricted", run(ev, pol, subjects=recs))


@pytest.mark.parametrize("kind", ["erasure_requested", "suspension_requested", "restricted"])
def test_read_of_a_restricted_subject_fires(kind):
    alerts = run(event(subject_ids=["c-1"]), subjects=[subject("c-1", kind, REQUESTED)])
    assert [a.rule for a in alerts] == ["subject_restricted"]
    assert alerts[0].severity == "high"
    assert alerts[0].subjects.count == 1
    assert kind.replace("_", " ") in alerts[0].summary


def test_delete_of_an_erased_subject_is_silent():
    ev = event(action="delete", subject_ids=["c-1"])
    assert run(ev, subjects=[subject("c-1", "erasure_requested", REQUESTED)]) == []


def test_before_the_request_is_silent():
    recs = [subject("c-1", "erasure_requested", at(hours=1))]
    assert fired(event(), recs) == []


def test_from_the_effective_instant_on():
    recs = [subject("c-1", "erasure_requested", BASE)]
    assert len(fired(event(when=BASE), recs)) == 1


def test_grace_period():
    pol = policy(thresholds={"restriction_grace_hours": 24})
    recs = [subject("c-1", "erasure_requested", REQUESTED)]
    assert fired(event(when=REQUESTED + timedelta(hours=23, minutes=59, seconds=59)),
                 recs, pol) == []
    assert len(fired(event(when=REQUESTED + timedelta(hours=24)), recs, pol)) == 1


def test_cleared_lifts_the_restriction():
    recs = [subject("c-1", "erasure_requested", REQUESTED),
            subject("c-1", "cleared", at(minutes=30))]
    assert len(fired(event(when=at(minutes=29)), recs)) == 1
    assert fired(event(when=at(minutes=30)), recs) == []


def test_only_the_restricted_subjects_are_counted_and_pseudonymised():
    recs = [subject("c-secret-7", "restricted", REQUESTED)]
    alerts = fired(event(subject_ids=["c-1", "c-secret-7", "c-2"]), recs)
    assert alerts[0].subjects.count == 1
    assert len(alerts[0].subjects.pseudonyms) == 1
    assert b"c-secret-7" not in msgspec.json.encode(alerts[0])


def test_other_subjects_are_silent():
    recs = [subject("c-9", "erasure_requested", REQUESTED)]
    assert fired(event(subject_ids=["c-1"]), recs) == []


def test_other_states_are_not_restrictions():
    recs = [subject("c-1", "marketing_opt_out", REQUESTED), subject("c-1", "minor", REQUESTED)]
    assert fired(event(subject_ids=["c-1"]), recs) == []
