"""The day scale (watchdog.anomaly.day_baseline): pure logic, event time."""

from __future__ import annotations

import numpy as np

from watchdog.anomaly.day_baseline import DayBaselines, DayConfig, DayEvidence
from watchdog.anomaly.risk import RiskConfig, RiskLedger
from watchdog.anomaly.risk_calibration import calibrate_risk

BUCKET = 600
DAY = 86400
D0 = 20_394  # 2025-11-03, a Monday (UTC day number)
PER_DAY = DAY // BUCKET
SLOT = {"u1": 0, "u2": 7, "gone": 3, "stays": 1, "newcomer": 3}  # featurizer account rows


def working_day(day: int, events: int, exports: int = 0, *, user: str = "u1",
                hours: float = 8.0, subjects: int | None = None,
                ) -> list[tuple[str, int, float, list[float]]]:
    """Rows of one account's day: ``events`` spread evenly over ``hours`` from 00:30, naming
    ``subjects`` subject ids (default: one per event), spread the same way."""
    n = int(hours * 6)
    first = (D0 + day) * PER_DAY + 3
    subjects = events if subjects is None else subjects
    rows = []
    for k in range(n):
        ev = events // n + (1 if k < events % n else 0)
        ex = exports // n + (1 if k < exports % n else 0)
        sj = subjects // n + (1 if k < subjects % n else 0)
        if ev or ex:
            b = first + k
            rows.append((user, b, b * BUCKET + 300.0, [float(ev), float(ex), float(sj)]))
    return rows


def feed(d: DayBaselines, rows: list[tuple[str, int, float, list[float]]],
         per_call: int = 1) -> list[DayEvidence]:
    """Hand ``rows`` in, ``per_call`` buckets' rows at a time (commits of any size)."""
    out: list[DayEvidence] = []
    buckets = sorted({b for _, b, _, _ in rows})
    for i in range(0, len(buckets), per_call):
        part = [r for r in rows if r[1] in set(buckets[i:i + per_call])]
        out.extend(d.observe([u for u, _, _, _ in part], np.array([SLOT[u] for u, _, _, _ in part]),
                             np.array([b for _, b, _, _ in part]),
                             np.array([t for _, _, t, _ in part]),
                             np.array([c for _, _, _, c in part], np.float32), BUCKET))
    return out


def ordinary(d: DayBaselines, days: int = 8, user: str = "u1") -> None:
    for k in range(days):
        assert feed(d, working_day(k, 40 + (k % 3) * 4, user=user)) == []


def test_ordinary_days_give_nothing_and_a_busy_day_counts_before_it_ends() -> None:
    d = DayBaselines()
    ordinary(d)
    got = feed(d, working_day(8, 100))  # 2.5x the usual day
    assert got, "no evidence for a day at 2.5x"
    total = sum(e.points for e in got)
    assert 1.0 <= total <= DayConfig().cap
    assert got[0].measure == "events"
    assert 35 <= got[0].usual <= 50
    day_end = (D0 + 9) * DAY
    first_hour = (D0 + 8) * DAY + 1800
    assert got[0].t < day_end - 12 * 3600, "evidence only once the day was over"
    assert got[0].t > first_hour


def test_the_attack_is_not_learnt() -> None:
    d = DayBaselines()
    ordinary(d)
    before = d.usual(SLOT["u1"])
    for k in range(8, 18):
        assert feed(d, working_day(k, 110)), f"day {k} at 2.6x gave nothing"
    after = d.usual(SLOT["u1"])
    assert after["events"] < before["events"] * 1.05


def test_first_day_and_idle_days_are_not_learnt() -> None:
    d = DayBaselines()
    feed(d, working_day(0, 5, hours=1))  # first seen late on its first day
    for k in range(1, 6):
        feed(d, working_day(k, 40))
    feed(d, working_day(6, 3, hours=1))  # a weekend's few events
    usual = d.usual(SLOT["u1"])
    assert 35 <= usual["events"] <= 45


def test_first_seen_on_a_weekend_starts_again_on_the_working_days() -> None:
    d = DayBaselines()
    feed(d, working_day(0, 5, hours=1))
    feed(d, working_day(1, 2, hours=1))  # the first whole day it is seen: a quiet Sunday
    for k in range(2, 9):
        feed(d, working_day(k, 40))
    usual = d.usual(SLOT["u1"])
    assert 35 <= usual["events"] <= 45
    assert feed(d, working_day(9, 42)) == []


def test_evidence_does_not_depend_on_how_commits_are_cut() -> None:
    def run(per_call: int) -> list[tuple[float, float]]:
        d = DayBaselines()
        rows = [r for k in range(12) for r in working_day(k, 130 if k >= 9 else 40)]
        rows += [r for k in range(12) for r in working_day(k, 30 if k < 10 else 70, 4,
                                                           user="u2")]
        return sorted((e.t, round(e.points, 5)) for e in feed(d, rows, per_call))

    one = run(1)
    assert one
    assert one == run(6) == run(1000)


def test_exports_count_as_their_own_measure() -> None:
    d = DayBaselines()
    for k in range(8):
        feed(d, working_day(k, 40, 2))
    got = feed(d, working_day(8, 40, 14))
    assert got
    assert {e.measure for e in got} == {"exports"}


def test_customers_read_count_where_events_hardly_move() -> None:
    """Most of a marketing account's events name no customer: reading 2.5x its usual
    customers one by one moves its events to 1.3x only."""
    d = DayBaselines()
    for k in range(8):
        assert feed(d, working_day(k, 60 + (k % 3) * 3, subjects=24)) == []
    got = feed(d, working_day(8, 60 - 20 + 40, subjects=60))  # 20 customer-less events less
    assert got, "2.5x the usual customers read gave no evidence"
    assert {e.measure for e in got} == {"subject_reads"}
    assert 2.2 <= got[-1].today / got[-1].usual <= 2.6


def test_one_query_naming_thousands_is_one_read() -> None:
    d = DayBaselines()
    for k in range(8):
        feed(d, working_day(k, 40, subjects=20))
    day = working_day(8, 40, subjects=20)
    user, b, t, c = day[5]
    day[5] = (user, b, t, [c[0], c[1], c[2] + 5000.0])  # one bulk query in one bucket
    assert feed(d, day) == []


def test_a_row_given_to_another_account_starts_afresh() -> None:
    d = DayBaselines()
    ordinary(d, 8, user="gone")
    feed(d, working_day(8, 400, user="newcomer"))  # the featurizer reused the row
    usual = d.usual(SLOT["newcomer"])
    assert usual["events"] == 0.0
    assert feed(d, working_day(9, 400, user="newcomer")) == []


def test_two_days_at_twice_the_usual_make_a_leaver_alert_one_does_not() -> None:
    cfg = RiskConfig(threshold=3.0)

    def run(days: int, leaver: bool) -> int:
        ledger = RiskLedger(cfg, leaver=lambda _u, _t: leaver)
        dd = DayBaselines()
        ordinary(dd)
        n = 0
        for k in range(8, 8 + days):
            ev = feed(dd, working_day(k, 90))
            n += len(ledger.add_windows((), [(e.t, e.user, e.points, f"{e.measure}_day",
                                              ("e1",), "detail") for e in ev]))
        return n

    assert run(1, False) == 0
    assert run(1, True) == 0
    assert run(2, True) == 1


def test_day_points_raise_the_calibrated_threshold() -> None:
    rng = np.random.default_rng(1)
    users = [f"u{i}" for i in range(50)]
    days = {(u, d) for u in users for d in range(4)}
    scores = rng.uniform(0.3, 0.45, 4000)
    times = rng.uniform(0, 4 * DAY, 4000)
    who = [users[i % 50] for i in range(4000)]
    quiet = calibrate_risk(scores, who, times, window_threshold=0.6, days=days,
                           sim_account_days=20_000)
    busy = {u: [0.0, 0.0, 1.5, 2.0] for u in users}
    noisy = calibrate_risk(scores, who, times, window_threshold=0.6, days=days,
                           sim_account_days=20_000, day_points=busy)
    assert noisy.config.threshold > quiet.config.threshold


def test_days_are_cut_at_four_in_the_morning_local_time() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from watchdog.anomaly.day_baseline import day_shift

    tokyo = ZoneInfo("Asia/Tokyo")
    start = datetime(2026, 11, 24, 8, 0, tzinfo=tokyo).timestamp()  # 23:00 UTC the day before
    end = datetime(2026, 11, 24, 20, 0, tzinfo=tokyo).timestamp()
    shift = day_shift(tokyo, start)
    assert (int(start) + shift) // DAY == (int(end) + shift) // DAY
    night = datetime(2026, 11, 25, 3, 59, tzinfo=tokyo).timestamp()
    morning = datetime(2026, 11, 25, 4, 1, tzinfo=tokyo).timestamp()
    assert (int(night) + shift) // DAY == (int(start) + shift) // DAY
    assert (int(morning) + shift) // DAY == (int(start) + shift) // DAY + 1
    utc = datetime(2026, 11, 24, 3, 0, tzinfo=UTC).timestamp()
    assert (int(utc) + day_shift(None, utc)) // DAY == int(utc) // DAY - 1
