"""account_not_revoked: an obligation judged once event time passes the departure plus
``revocation_minutes``, on the records in force at the deadline."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import BASE, account, directory, event, login, only, policy, run

LEFT = BASE - timedelta(hours=3)
DEADLINE = LEFT + timedelta(minutes=60)
AFTER = DEADLINE + timedelta(seconds=1)
HIRED = BASE - timedelta(days=300)


def dir_recs(status: str = "departed", roles: list[str] | None = None):
    return [directory("e1", effective=HIRED),
            directory("e1", status, effective=LEFT, roles=roles or [])]


def fired(accounts, dirs=None, when=AFTER, pol=None):
    # any later event, by anyone, carries event time past the deadline
    alerts = run(event(user="e2", when=when, categories=["identity"], purpose="billing"),
                 pol, dir_records=[*(dirs or dir_recs()), directory("e2", roles=["billing"])],
                 accounts=accounts)
    return only("account_not_revoked", alerts)


def test_still_enabled_at_the_deadline_fires():
    alerts = fired([account("e1", True, HIRED)])
    assert len(alerts) == 1
    a = alerts[0]
    assert a.severity == "critical"
    assert a.user_id == "e1"
    assert a.ts == "2026-11-17T23:00:00.000Z"  # the deadline, not the triggering event
    assert a.event_ids == ("directory/e1/2026-11-17T22:00:00Z",)


def test_disabled_one_minute_before_the_deadline_is_silent():
    recs = [account("e1", True, HIRED), account("e1", False, DEADLINE - timedelta(minutes=1))]
    assert fired(recs) == []


def test_disabled_after_the_deadline_still_fires():
    recs = [account("e1", True, HIRED), account("e1", False, DEADLINE + timedelta(seconds=1))]
    assert len(fired(recs, when=AFTER + timedelta(hours=1))) == 1


def test_not_judged_before_an_event_after_the_deadline():
    assert fired([account("e1", True, HIRED)], when=DEADLINE) == []


def test_departure_reverted_within_the_deadline_is_silent():
    dirs = [*dir_recs(), directory("e1", effective=LEFT + timedelta(minutes=30))]
    assert fired([account("e1", True, HIRED)], dirs) == []


def test_an_account_the_identity_provider_does_not_report_is_not_judged():
    assert fired([account("e9", True, HIRED)]) == []


def test_transferred_fires_only_for_a_role_outside_the_new_ones():
    dirs = dir_recs("transferred", roles=["billing"])
    kept = [account("e1", True, HIRED, roles=["billing", "support_agent"])]
    assert len(fired(kept, dirs)) == 1
    moved = [account("e1", True, HIRED, roles=["billing"])]
    assert fired(moved, dirs) == []


def test_one_alert_per_obligation_and_the_threshold_is_exact():
    pol = policy(thresholds={"revocation_minutes": 15})
    recs = [account("e1", True, HIRED)]
    dirs = dir_recs()
    evs = [login(user="e2", when=LEFT + timedelta(minutes=15)),
           login(user="e2", when=LEFT + timedelta(minutes=15, seconds=1)),
           login(user="e2", when=LEFT + timedelta(minutes=50))]
    alerts = only("account_not_revoked",
                  run(evs, pol, dir_records=[*dirs, directory("e2", roles=["billing"])],
                      accounts=recs))
    assert [a.ts for a in alerts] == ["2026-11-17T22:15:00.000Z"]
