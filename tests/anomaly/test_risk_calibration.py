"""The risk's floor and threshold from the held-out baseline (risk_calibration)."""

from __future__ import annotations

import numpy as np

from watchdog.anomaly.risk import DAY, RiskConfig
from watchdog.anomaly.risk_calibration import calibrate_risk, count_crossings, daily_points


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


def test_one_unusual_day_is_not_taken_for_a_habit() -> None:
    """Two weeks give an account 3-4 held-out days: one busy day among them is a third of its
    days; drawn alone, it would be a habit and lift the threshold for everyone."""
    s, u, t, held = heldout(0.03, accounts=200, days=3)
    s = s.copy()
    first = np.array([x in {"a0", "a1"} for x in u]) & (t < (20_000 + 1) * DAY)
    s[first] = 0.6  # a0 and a1: one day at the per-window threshold
    cal = calibrate_risk(s, u, t, window_threshold=0.6, days=held)
    assert cal.config.threshold == 2.5
