"""brute_force: at least thresholds.failed_logins failed logins of one account within 10 min;
one alert per crossing."""

from __future__ import annotations

from tests.builders import at, login, only, policy, run


def fails(n: int, *, every: float = 10.0, start: float = 0.0, user: str = "e1"):
    return [login(outcome="failure", user=user, when=at(seconds=start + i * every))
            for i in range(n)]


def fired(evs, pol=None):
    return only("brute_force", run(evs, pol))


def test_threshold_minus_one_is_silent():
    assert run(fails(9)) == []


def test_threshold_fires_on_the_completing_login():
    evs = fails(10)
    alerts = run(evs)
    assert [a.rule for a in alerts] == ["brute_force"]
    a = alerts[0]
    assert a.severity == "medium"
    assert a.event_ids[-1] == evs[-1].event.id
    assert len(a.event_ids) == 10
    assert a.user_id == "e1"


def test_within_ten_minutes_only():
    assert len(fired(fails(10, every=599 / 9))) == 1  # first to last: 9 min 59 s
    assert fired(fails(10, every=601 / 9)) == []  # 10 min 1 s: the first has left


def test_one_alert_per_crossing():
    evs = fails(15)
    assert len(fired(evs)) == 1
    # a second burst after the window emptied is a second crossing
    evs += fails(10, start=3600)
    alerts = fired(evs)
    assert len(alerts) == 2
    assert alerts[1].event_ids[-1] == evs[-1].event.id
    assert alerts[0].alert_id != alerts[1].alert_id


def test_successful_logins_do_not_count():
    evs = [*fails(9), login(when=at(seconds=95))]
    assert fired(evs) == []


def test_accounts_are_counted_separately():
    evs = fails(5, user="e1") + fails(5, user="e2", start=1)
    assert fired(sorted(evs, key=lambda e: e.timestamp)) == []


def test_unknown_account_is_tracked_too():
    assert len(fired(fails(10, user="ghost"))) == 1


def test_threshold_follows_the_policy():
    pol = policy(thresholds={"failed_logins": 3})
    assert fired(fails(2), pol) == []
    assert len(fired(fails(3), pol)) == 1
