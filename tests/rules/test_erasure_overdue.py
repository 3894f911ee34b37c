"""erasure_overdue: each resource an erasure request names must delete the subject by the
deadline; judged at the first event after it."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import BASE, event, only, policy, run, subject

ASKED = BASE - timedelta(days=40)
DEADLINE = ASKED + timedelta(days=30)
LATER = event(user="e1", when=BASE, subject_ids=["c-2"])  # past the deadline


def delete(when, resource="crm.customers", outcome=None, subject_id="c-1"):
    return event(action="delete", when=when, resource=resource, subject_ids=[subject_id],
                 outcome=outcome)


def fired(deletes, recs=None, pol=None, last=LATER):
    recs = recs or [subject("c-1", "erasure_requested", ASKED,
                            resources=["crm.customers", "mail.archive"])]
    return only("erasure_overdue", run([*deletes, last], pol, subjects=recs))


def test_every_resource_that_did_not_delete_fires():
    alerts = fired([delete(DEADLINE - timedelta(hours=1))])
    assert [a.user_id for a in alerts] == ["mail.archive"]
    a = alerts[0]
    assert a.ts == "2026-11-08T01:00:00.000Z"  # the deadline
    assert a.event_ids[0].startswith("subjects/s-")
    assert a.event_ids[0].endswith(
        "/2026-10-09T01:00:00Z")
    assert "c-1" not in str(a)  # no raw subject id anywhere


def test_deletes_an_hour_before_the_deadline_are_silent():
    deletes = [delete(DEADLINE - timedelta(hours=1)),
               delete(DEADLINE - timedelta(hours=1), "mail.archive")]
    assert fired(deletes) == []


def test_a_delete_at_the_deadline_counts():
    deletes = [delete(DEADLINE), delete(DEADLINE, "mail.archive")]
    assert fired(deletes) == []


def test_a_delete_before_the_request_does_not_count():
    deletes = [delete(ASKED - timedelta(seconds=1)),
               delete(DEADLINE - timedelta(hours=1), "mail.archive")]
    assert [a.user_id for a in fired(deletes)] == ["crm.customers"]


def test_a_failed_delete_does_not_count():
    deletes = [delete(DEADLINE - timedelta(hours=2), outcome="failure"),
               delete(DEADLINE - timedelta(hours=1), "mail.archive")]
    assert [a.user_id for a in fired(deletes)] == ["crm.customers"]


def test_a_request_cleared_in_time_is_silent():
    recs = [subject("c-1", "erasure_requested", ASKED, resources=["crm.customers"]),
            subject("c-1", "cleared", DEADLINE - timedelta(days=1))]
    assert fired([], recs) == []


def test_a_later_request_replaces_the_earlier_one():
    second = ASKED + timedelta(days=5)
    recs = [subject("c-1", "erasure_requested", ASKED, resources=["crm.customers"]),
            subject("c-1", "erasure_requested", second, resources=["crm.customers"])]
    last = event(user="e1", when=second + timedelta(days=31), subject_ids=["c-2"])
    alerts = fired([], recs, last=last)
    assert len(alerts) == 1
    assert alerts[0].event_ids[0].endswith("/2026-10-14T01:00:00Z")


def test_without_resources_one_delete_anywhere_fulfils_it():
    recs = [subject("c-1", "erasure_requested", ASKED)]
    assert fired([delete(ASKED + timedelta(days=2), "anything.else")], recs) == []
    alerts = fired([], recs)
    assert [a.user_id for a in alerts] == ["subject-register"]


def test_nothing_before_an_event_after_the_deadline():
    assert fired([], last=event(when=DEADLINE, subject_ids=["c-2"])) == []


def test_erasure_days_is_an_exact_duration():
    pol = policy(thresholds={"erasure_days": 10})
    recs = [subject("c-1", "erasure_requested", ASKED)]
    on_time = event(when=ASKED + timedelta(days=10), subject_ids=["c-2"])
    assert fired([], recs, pol, last=on_time) == []
    late = event(when=ASKED + timedelta(days=10, seconds=1), subject_ids=["c-2"])
    assert len(fired([], recs, pol, last=late)) == 1
