"""The subject register on event time: states accumulate, a later record of a type replaces
the earlier one, `cleared` removes every earlier state, consent is decided per purpose."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import BASE, subject
from watchdog.events import epoch
from watchdog.state.subjects import SubjectRegister


def reg(*recs) -> SubjectRegister:
    r = SubjectRegister()
    for rec in recs:
        r.apply(rec)
    return r


def t(**delta) -> float:
    return epoch(BASE + timedelta(**delta))


def rec(kind: str, days: float, purposes=None, sid: str = "c-1"):
    return subject(sid, kind, BASE + timedelta(days=days), purposes)


def test_unknown_subject_has_no_state():
    r = reg()
    st = r.at("c-1", t())
    assert st.states == {}
    assert not st.minor
    assert st.restricted_since() is None
    assert st.consent("marketing") is None
    assert "c-1" not in r


def test_record_applies_from_its_effective_instant():
    r = reg(rec("minor", 0))
    assert not r.at("c-1", t(seconds=-1)).minor
    assert r.at("c-1", t()).minor


def test_states_accumulate():
    st = reg(rec("marketing_opt_out", -2), rec("minor", -1)).at("c-1", t())
    assert st.minor
    assert st.opted_out_of_marketing()
    assert set(st.states) == {"marketing_opt_out", "minor"}


def test_a_later_record_of_the_same_type_replaces_the_earlier():
    st = reg(rec("erasure_requested", -5), rec("erasure_requested", -1)).at("c-1", t())
    assert st.restricted_since() == t(days=-1)
    st = reg(rec("consent_granted", -5, ["marketing"]),
             rec("consent_granted", -1, ["billing"])).at("c-1", t())
    assert st.consent("billing") is True
    assert st.consent("marketing") is None  # the [marketing] grant was replaced


def test_other_types_are_not_replaced():
    r = reg(rec("minor", 3), rec("marketing_opt_out", -1))
    assert r.at("c-1", t(days=4)).minor


def test_restriction_reports_the_earliest_in_force():
    st = reg(rec("restricted", -1), rec("suspension_requested", -3)).at("c-1", t())
    assert st.restricted_since() == t(days=-3)
    assert st.restriction() == "suspension_requested"


def test_cleared_removes_every_earlier_state():
    r = reg(rec("minor", -5), rec("marketing_opt_out", -4), rec("erasure_requested", -3),
            rec("cleared", -2), rec("consent_granted", -1, ["billing"]))
    assert set(r.at("c-1", t(days=-2, seconds=-1)).states) == {
        "minor", "marketing_opt_out", "erasure_requested"}
    st = r.at("c-1", t())
    assert set(st.states) == {"consent_granted"}  # only what came after the clearing
    assert not st.minor
    assert st.restricted_since() is None


def test_consent_is_per_purpose():
    st = reg(rec("consent_granted", -1, ["marketing", "analytics"])).at("c-1", t())
    assert st.consent("marketing") is True
    assert st.consent("analytics") is True
    assert st.consent("billing") is None


def test_consent_without_purposes_covers_all():
    assert reg(rec("consent_withdrawn", -1)).at("c-1", t()).consent("anything") is False
    assert reg(rec("consent_granted", -1)).at("c-1", t()).consent("anything") is True


def test_latest_consent_record_covering_the_purpose_wins():
    r = reg(rec("consent_withdrawn", -5), rec("consent_granted", -1, ["marketing"]))
    st = r.at("c-1", t())
    assert st.consent("marketing") is True
    assert st.consent("analytics") is False  # the withdrawal still covers it
    assert not st.opted_out_of_marketing()
    assert r.at("c-1", t(days=-2)).consent("marketing") is False


def test_state_is_recomputed_after_a_late_record():
    r = reg(rec("minor", -5))
    assert not r.at("c-1", t()).opted_out_of_marketing()  # cached
    r.apply(rec("marketing_opt_out", -1))
    assert r.at("c-1", t()).opted_out_of_marketing()
    r.apply(rec("cleared", -0.5))
    assert r.at("c-1", t()).states == {}
    assert r.at("c-1", t(days=-1)).opted_out_of_marketing()  # history is kept


def test_subjects_are_independent():
    r = reg(rec("minor", -1, sid="c-1"), rec("cleared", -0.5, sid="c-2"))
    assert r.at("c-1", t()).minor
    assert len(r) == 2
