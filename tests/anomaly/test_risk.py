"""Person-level risk (watchdog.anomaly.risk): pure logic, event time."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.anomaly.risk import DAY, RiskAlert, RiskConfig, RiskLedger

T0 = 1_793_577_600.0  # 2026-11-02 00:00 UTC, a Monday
CFG = RiskConfig(threshold=3.0, floor=0.5, window_threshold=0.7, half_life_days=3.0,
                 window_day_cap=2.0, cooldown_days=3.0)
Window = tuple[float, str, float, tuple[str, ...], tuple[str, ...]]


def office_windows(user: str, day: int, score: float, n: int = 24,
                   what: tuple[str, ...] = ("subjects_24h",)) -> list[Window]:
    """``n`` scored 20-minute windows of one working day (from 09:00), all at ``score``."""
    start = T0 + day * DAY + 9 * 3600
    return [(start + k * 1200.0, user, score, what, (f"{user}-d{day}-e{k}",)) for k in range(n)]


def noise(rng: random.Random, user: str, day: int) -> list[Window]:
    """Ordinary days: scores around 0.4, a rare one just above the floor."""
    start = T0 + day * DAY + 9 * 3600
    out = []
    for k in range(24):
        s = rng.gauss(0.42, 0.03)
        if rng.random() < 0.01:
            s = rng.uniform(0.5, 0.62)
        out.append((start + k * 1200.0, user, s, ("events_1h",), (f"{user}-{day}-{k}",)))
    return out


def working_days(n: int) -> list[int]:
    return [d for d in range(n + n // 5 * 2 + 2) if d % 7 < 5][:n]


def test_sustained_small_anomalies_cross_within_two_days() -> None:
    ledger = RiskLedger(CFG)
    alerts: list[RiskAlert] = []
    # a sustained change: every window of the day slightly unusual (2-3x: 0.55-0.6, under
    # the per-window threshold 0.7), 5 working days
    for day in working_days(5):
        alerts += ledger.add_windows(office_windows("u1", day, 0.56))
    assert alerts, ledger.value("u1", T0 + 7 * DAY)
    first = alerts[0]
    assert first.t - (T0 + 9 * 3600) < 2 * DAY
    assert first.value >= CFG.threshold
    # explained: its days and behaviours, each traceable to events
    assert {c.day for c in first.contributions} == {int(T0 // DAY), int(T0 // DAY) + 1}
    assert all(c.what == ("subjects_24h",) and c.ids for c in first.contributions)
    assert all(i.startswith("u1-d") for c in first.contributions for i in c.ids)


def test_ordinary_noise_never_crosses() -> None:
    rng = random.Random(7)
    ledger = RiskLedger(CFG)
    alerts: list[RiskAlert] = []
    for day in working_days(40):
        for u in range(50):
            alerts += ledger.add_windows(noise(rng, f"n{u}", day))
    assert alerts == []
    assert max(ledger.value(f"n{u}", T0 + 60 * DAY) for u in range(50)) < CFG.threshold / 3


def test_one_busy_day_is_capped_and_decays() -> None:
    ledger = RiskLedger(CFG)
    # a whole day at the per-window threshold: 24 points without the cap, 2 with it
    assert ledger.add_windows(office_windows("u1", 0, 0.7)) == []
    t = T0 + 9 * 3600 + 1200  # the cap was reached at the second window
    assert abs(ledger.value("u1", t) - 2.0) < 0.01
    assert abs(ledger.value("u1", t + 3 * DAY) - 1.0) < 0.01  # one half-life
    # the same day again a week later: the first has decayed, no alert
    assert ledger.add_windows(office_windows("u1", 7, 0.7)) == []
    # but two days in a row add up
    assert ledger.add_windows(office_windows("u1", 8, 0.7))


def test_notice_at_raises_the_weight() -> None:
    def leaver(user: str, t: float) -> bool:
        return user == "leaver" and t >= T0 + 1 * DAY

    ledger = RiskLedger(CFG, leaver=leaver)
    got: dict[str, list[RiskAlert]] = {"stayer": [], "leaver": []}
    for day in (1, 2):
        for user in got:
            got[user] += ledger.add_windows(office_windows(user, day, 0.545, n=6))
    assert got["stayer"] == []
    assert got["leaver"]
    assert got["leaver"][0].leaver
    assert all(c.leaver for c in got["leaver"][0].contributions)


def _day(user: str, day: int, points: float) -> tuple[float, str, float, str, tuple[str, ...],
                                                      str]:
    """Day evidence of ``user`` at 17:00 of ``day``."""
    return (T0 + day * DAY + 17 * 3600, user, points, "events_day", (f"{user}-{day}",), "")


def test_an_escalating_risk_alerts_again_within_the_cool_down() -> None:
    """A leaver's ordinary busy day that alerted (the cool-down starts) must not hide the theft
    that starts the next day: a risk twice what that alert reported alerts again, and says
    so; without escalation the theft waits out the cool-down."""
    def run(cfg: RiskConfig) -> list[RiskAlert]:
        ledger = RiskLedger(cfg)
        out: list[RiskAlert] = []
        for day, pts in ((0, 3.2), (1, 4.0), (2, 4.0), (3, 4.0), (4, 4.0), (5, 4.0)):
            out += ledger.add_windows((), [_day("u1", day, pts)])
        return out

    got = run(CFG)
    assert [int((a.t - T0) // DAY) for a in got] == [0, 2, 5]
    assert got[0].escalated_from is None
    assert got[0].threshold == CFG.threshold
    # day 2: 4.0 decayed one day + 4.0 = 7.17 >= 2 x 3.2 (the alert of day 0)
    assert got[1].escalated_from == (T0 + 17 * 3600, 3.2)
    assert got[1].threshold == 6.4
    assert got[1].value >= 6.4
    # rate-limited: within its cool-down the next needs twice 7.17; day 5 is past it
    assert got[2].escalated_from is None
    assert got[2].threshold == CFG.threshold
    quiet = run(replace(CFG, escalation=None))
    assert [int((a.t - T0) // DAY) for a in quiet] == [0, 3]


def test_escalation_is_off_for_a_model_calibrated_without_it() -> None:
    doc = {k: v for k, v in CFG.to_dict().items() if k != "escalation"}
    assert RiskConfig.from_dict(doc, 0.7).escalation is None
    assert RiskConfig.from_dict(CFG.to_dict(), 0.7).escalation == 2.0


def test_rule_alerts_add_once_a_day_each_in_event_time_order() -> None:
    ledger = RiskLedger(CFG)
    t = T0 + 10 * 3600
    # known early (the daemon judges some rules on arrival), counted once event time is there;
    # a redelivered alert once, a rule's further alerts that day listed but not counted
    for k in range(4):
        ledger.add_rule_alert("u1", t + k * 60, "bulk_export", "high", f"bulk_export:{k}")
        ledger.add_rule_alert("u1", t + k * 60, "bulk_export", "high", f"bulk_export:{k}")
    assert ledger.value("u1", t) == 0.0
    assert ledger.add_windows([(t + 600, "u2", 0.4, (), ())]) == []
    assert abs(ledger.value("u1", t + 600) - 1.0) < 0.01
    (c,) = ledger.contributions("u1")
    assert c.kind == "rule"
    assert c.what == ("bulk_export",)
    assert c.count == 4
    assert c.ids == ("bulk_export:0", "bulk_export:1", "bulk_export:2")  # MAX_IDS kept
    # distinct rules add up
    ledger.add_rule_alert("u1", t + 900, "external_media", "high", "external_media:1")
    ledger.add_rule_alert("u1", t + 960, "off_hours_access", "critical", "off_hours_access:1")
    out = ledger.advance(t + 3600)
    assert len(out) == 1
    assert out[0].user_id == "u1"
    assert {c.what for c in out[0].contributions} == {
        ("bulk_export",), ("external_media",), ("off_hours_access",)}
    # the cool-down: no second risk alert for days
    for k, rule in enumerate(("a", "b", "c", "d")):
        ledger.add_rule_alert("u1", t + 4000 + k, rule, "critical", f"{rule}:{k}")
    assert ledger.advance(t + DAY) == []


def test_memory_is_bounded_per_account() -> None:
    ledger = RiskLedger(RiskConfig(threshold=1e9, floor=0.5, window_threshold=0.7))
    for day in range(30):
        for k, what in enumerate(("a_1h", "b_1h", "c_1h", "d_1h")):
            ledger.add_windows([(T0 + day * DAY + k, "u1", 0.6, (what,), ("e",))])
    assert len(ledger.contributions("u1")) == ledger.config.max_contributions
    # the kept ones are the latest (largest after decay)
    assert min(c.day for c in ledger.contributions("u1")) >= int(T0 // DAY) + 27


def test_damped_pattern_adds_nothing() -> None:
    ledger = RiskLedger(CFG, damped=lambda u, what, t: u == "u1" and set(what) <= {"x_1h"})
    for day in range(3):
        assert ledger.add_windows(office_windows("u1", day, 0.6, what=("x_1h",))) == []
        ledger.add_windows(office_windows("u2", day, 0.6, what=("x_1h",)))
    assert ledger.value("u1", T0 + 3 * DAY) == 0.0
    assert ledger.alerts == 1  # u2


def _alerts_key(alerts: list[RiskAlert]) -> list[tuple[str, float, float]]:
    return [(a.user_id, a.t, round(a.value, 9)) for a in alerts]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_live_equals_replay_whatever_the_calls(data: st.DataObject) -> None:
    """The same windows and rule alerts, handed over in any split into calls and with rule
    alerts known any time before their window (as the daemon and replay do): the same
    risk alerts."""
    rng = random.Random(data.draw(st.integers(0, 10_000)))
    windows: list[Window] = []
    for day in range(4):
        for u in ("a", "b", "c"):
            windows += [(t, u, s if rng.random() < 0.7 else 0.3, what, ids)
                        for t, u, s, what, ids in office_windows(u, day, rng.uniform(0.5, 0.7),
                                                                   n=6)]
    windows.sort()
    rules = [(T0 + rng.uniform(0, 4 * DAY), rng.choice("abc"), f"r:{k}") for k in range(8)]

    def run(cuts: list[int], early: bool) -> list[RiskAlert]:
        ledger = RiskLedger(RiskConfig(threshold=2.5, floor=0.5, window_threshold=0.7))
        out: list[RiskAlert] = []
        pending = sorted(rules)
        start = 0
        for end in [*sorted(cuts), len(windows)]:
            part = windows[start:end]
            if not part:
                continue
            # the rules' alerts up to the last window are known (or sooner, the daemon's)
            horizon = part[-1][0] + (DAY / 2 if early else 0.0)
            for r in [r for r in pending if r[0] <= horizon]:
                ledger.add_rule_alert(r[1], r[0], "bulk_export", "medium", r[2])
            pending = [r for r in pending if r[0] > horizon]
            out += ledger.add_windows(list(reversed(part)))  # order within a call is free
            start = end
        for r in pending:
            ledger.add_rule_alert(r[1], r[0], "bulk_export", "medium", r[2])
        return out + ledger.advance(float("inf"))

    one = run([], False)
    cuts = data.draw(st.lists(st.integers(0, len(windows)), max_size=10))
    assert _alerts_key(run(cuts, data.draw(st.booleans()))) == _alerts_key(one)
