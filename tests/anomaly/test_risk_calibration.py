"""The risk's floor and threshold from the held-out baseline (risk_calibration)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.anomaly.risk import DAY, RiskConfig, RiskLedger
from watchdog.anomaly.risk_calibration import (
    calibrate_risk,
    count_crossings,
    daily_points,
    leaver_factor,
)


def heldout(noise: float, seed: int = 0, accounts: int = 100, days: int = 4,
            ) -> tuple[np.ndarray, list[str], np.ndarray, set[tuple[str, int]]]:
    """A small baseline's held-out rows: 100 accounts x 4 days x 24 windows."""
    rng = np.random.default_rng(seed)
    users, times, scores, held = [], [], [], set()
    for a in range(accounts):
        for d in range(days):
            day = 20_000 + 3 * d
            held.add((f"a{a}", day))
            for k in range(24):
                users.append(f"a{a}")
                times.append(day * DAY + 32_400 + k * 1200)
                scores.append(0.42 + rng.normal(0, noise))
    return np.array(scores), users, np.array(times), held


def test_threshold_meets_the_target_and_never_below_two_days() -> None:
    s, u, t, held = heldout(0.03)
    cal = calibrate_risk(s, u, t, window_threshold=0.6, days=held, target=0.5)
    assert cal.config.floor == np.quantile(s, 0.99)
    assert cal.config.threshold >= 2.5  # more than one capped day
    assert cal.simulated_account_days >= 200_000
    assert 1000 * cal.simulated_alerts / cal.simulated_account_days <= 0.5


def test_noisier_accounts_get_a_higher_threshold() -> None:
    s, u, t, held = heldout(0.03)
    quiet = calibrate_risk(s, u, t, window_threshold=0.6, days=held)
    # a fifth of the accounts raise a high-severity rule alert every day
    rules = {f"a{a}": [(day * DAY + 36_000, "bulk_export", "high") for _, day in held]
             for a in range(0, 100, 5)}
    noisy = calibrate_risk(s, u, t, window_threshold=0.6, days=held, rule_alerts=rules)
    assert noisy.config.threshold > quiet.config.threshold
    assert 1000 * noisy.simulated_alerts / noisy.simulated_account_days <= 0.5


def test_daily_points_count_each_rule_once_a_day() -> None:
    cfg = RiskConfig(floor=0.5, window_threshold=0.7)
    days = {("a", 10), ("a", 11), ("b", 10)}
    pts = daily_points(np.array([0.6, 0.7, 0.7, 0.7]), ["a", "a", "a", "b"],
                       np.array([10 * DAY, 10 * DAY + 1, 10 * DAY + 2, 10 * DAY]), cfg, days,
                       {"a": [(11 * DAY, "r", "high"), (11 * DAY + 5, "r", "high"),
                              (11 * DAY + 9, "s", "low"), (12 * DAY, "r", "high")]})
    assert pts == {"a": [2.0, 1.25], "b": [1.0]}  # capped at 2; r once, s; day 12 not held


def test_crossings_reset_and_cool_down() -> None:
    cfg = RiskConfig(half_life_days=1e9, cooldown_days=2.0)
    draws = np.full((1, 10), 1.0)
    # 1 point a day, no decay, threshold 3: day 3 alerts, reset; cool-down 2 days
    assert count_crossings(draws, 2.99, cfg) == 3  # days 3, 6, 9


def test_crossings_count_escalations_as_the_ledger_raises_them() -> None:
    cfg = RiskConfig(half_life_days=1e9, cooldown_days=3.0)
    draws = np.array([[3.0, 6.0, 6.0, 6.5, 0.0]])
    # day 0 alerts (3); day 1 reaches 2 x 3 within the cool-down: again; day 3 2 x 6 (12.5)
    assert count_crossings(draws, 2.99, cfg) == 3
    assert count_crossings(draws, 2.99, replace(cfg, escalation=None)) == 2  # days 0, 4


def test_one_unusual_day_is_not_taken_for_a_habit() -> None:
    """Two weeks give an account 3-4 held-out days: one busy day among them is a third of its
    days; drawn alone, it would be a habit and lift the threshold for everyone."""
    s, u, t, held = heldout(0.03, accounts=200, days=3)
    s = s.copy()
    first = np.array([x in {"a0", "a1"} for x in u]) & (t < (20_000 + 1) * DAY)
    s[first] = 0.6  # a0 and a1: one day at the per-window threshold
    cal = calibrate_risk(s, u, t, window_threshold=0.6, days=held)
    assert cal.config.threshold == 2.5


def day_points_of(busy: float, seed: int = 0, accounts: int = 200, days: int = 10,
                  ) -> dict[str, list[float]]:
    """The day scale's points: most days none, a share ``busy`` of them one point."""
    rng = np.random.default_rng(seed)
    return {f"a{a}": [1.0 if rng.random() < busy else 0.0 for _ in range(days)]
            for a in range(accounts)}


def test_the_leaver_factor_spends_the_leaver_budget_and_no_more() -> None:
    s, u, t, held = heldout(0.03, accounts=200)
    pts = day_points_of(0.1)
    cal = calibrate_risk(s, u, t, window_threshold=0.6, days=held, day_points=pts,
                         leaver_target=10.0)
    f = cal.config.leaver_factor
    rate = 1000 * cal.simulated_leaver_alerts / cal.simulated_account_days
    assert 1.0 <= f <= 4.0
    assert rate <= 10.0
    assert cal.to_dict()["calibration"]["target_false_alerts_per_1000_leaver_days"] == 10.0
    # a larger budget buys a larger factor; a smaller one a smaller factor
    more = calibrate_risk(s, u, t, window_threshold=0.6, days=held, day_points=pts,
                          leaver_target=40.0)
    less = calibrate_risk(s, u, t, window_threshold=0.6, days=held, day_points=pts,
                          leaver_target=2.0)
    assert less.config.leaver_factor < f < more.config.leaver_factor


def test_the_leaver_factor_is_the_largest_within_the_budget() -> None:
    """To its 0.05 step: a step more spends too much (simulated days of points, the same
    counting as the ledger's)."""
    rng = np.random.default_rng(3)
    draws = np.where(rng.random((400, 60)) < 0.1, rng.uniform(0.2, 1.0, (400, 60)), 0.0)
    cfg = RiskConfig(threshold=3.0)
    allowed = 10.0 * draws.size / 1000.0
    f = leaver_factor(draws, cfg, allowed)
    assert 1.0 < f < 4.0  # within the range, not at an end
    assert count_crossings(draws * f, cfg.threshold, cfg) <= allowed
    assert count_crossings(draws * (f + 0.05), cfg.threshold, cfg) > allowed


def test_a_given_leaver_factor_is_kept() -> None:
    s, u, t, held = heldout(0.03)
    cal = calibrate_risk(s, u, t, window_threshold=0.6, days=held,
                         base=RiskConfig(leaver_factor=2.0), leaver_target=None)
    assert cal.config.leaver_factor == 2.0
    assert cal.to_dict()["calibration"]["target_false_alerts_per_1000_leaver_days"] is None


def test_quiet_organisations_get_the_largest_factor_noisy_ones_a_small_one() -> None:
    s, u, t, held = heldout(0.03, accounts=200)
    quiet = calibrate_risk(s, u, t, window_threshold=0.6, days=held,
                           day_points=day_points_of(0.0))
    assert quiet.config.leaver_factor == 4.0  # nothing to raise: the factor's ceiling
    noisy = calibrate_risk(s, u, t, window_threshold=0.6, days=held,
                           day_points=day_points_of(0.6))
    # most days near the threshold: any weight on them costs many alerts
    assert noisy.config.leaver_factor < 1.5
    assert 1000 * noisy.simulated_leaver_alerts / noisy.simulated_account_days <= 10.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.01, 0.5, 1.0, 2.0, 3.5, 7.0, 15.0]),
                         min_size=12, max_size=12), min_size=1, max_size=4),
       st.sampled_from([1.0, 3.0, 1e9]), st.sampled_from([0.0, 2.0, 3.0]),
       st.sampled_from([2.0, None]))
def test_crossings_are_the_ledgers_alerts(days: list[list[float]], half_life: float,
                                          cooldown: float, escalation: float | None) -> None:
    """count_crossings (what train calibrates the threshold on) counts exactly the alerts
    the ledger raises on the same points, one day's evidence at the same hour each day (every
    day some: the ledger looks at an account when a signal comes, the count at every day's
    end)."""
    cfg = RiskConfig(threshold=3.0, half_life_days=half_life, cooldown_days=cooldown,
                     escalation=escalation)
    ledger = RiskLedger(cfg)
    t0 = 1_793_577_600.0 + 17 * 3600
    raised = 0
    for d in range(12):
        ev = [(t0 + d * DAY, f"u{i}", pts[d], "events_day", (f"e{i}-{d}",), "")
              for i, pts in enumerate(days)]
        raised += len(ledger.add_windows((), ev))
    assert count_crossings(np.array(days), cfg.threshold, cfg) == raised
