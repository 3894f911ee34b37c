"""unknown_account: personal-data access by an account with no directory record in force."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import at, directory, event, login, only, rules, run


def test_unknown_account_personal_access_fires():
    alerts = run(event(user="x999"))
    assert rules(alerts) == ["unknown_account"]  # supersedes the role-based rules
    assert alerts[0].severity == "high"
    assert alerts[0].user_id == "x999"


def test_known_account_is_silent():
    assert run(event(user="e1")) == []


def test_unknown_account_login_is_silent():
    # not personal-data access; brute_force judges failed logins of any account
    assert run(login(user="x999")) == []
    assert run(login(user="x999", outcome="failure")) == []


def test_record_effective_later_than_event_means_unknown():
    recs = [directory("n1", effective=at(hours=1))]
    assert rules(run(event(user="n1", when=at(hours=1) - timedelta(seconds=1)),
                     dir_records=recs)) == ["unknown_account"]


def test_record_effective_at_the_event_time_applies():
    recs = [directory("n1", effective=at(hours=1))]
    assert run(event(user="n1", when=at(hours=1)), dir_records=recs) == []


def test_subject_count_only_access_counts_as_personal():
    ev = event(user="x999", categories=None, subject_ids=None, subject_count=3, purpose=None)
    assert rules(only("unknown_account", run(ev))) == ["unknown_account"]


def test_access_without_personal_data_is_silent():
    ev = event(user="x999", categories=None, subject_ids=None, purpose=None)
    assert only("unknown_account", run(ev)) == []
