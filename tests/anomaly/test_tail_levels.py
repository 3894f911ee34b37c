"""The tail score's levels per count: calibrated on held-out rows, within a floor and a
ceiling, and what they make of a row (pure logic)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from watchdog.anomaly.calibration import calibrate_with_tail
from watchdog.anomaly.model import AnomalyModel
from watchdog.anomaly.tail_levels import (
    LEVEL_FLOOR,
    LEVEL_MAX,
    SHORT,
    alerting_times,
    block_maxima,
    calibrate_levels,
    level_for,
    times_beyond,
)
from watchdog.anomaly.vocabulary import TAIL_COLS, WINDOW_FEATURES

NT = len(TAIL_COLS)
EVENTS_1H = WINDOW_FEATURES.index("events_1h")
SUBJ_1H = WINDOW_FEATURES.index("subjects_1h")
E = int(np.flatnonzero(TAIL_COLS == EVENTS_1H)[0])
S = int(np.flatnonzero(TAIL_COLS == SUBJ_1H)[0])


def _held(n: int = 20_000, accounts: int = 500, seed: int = 0,
          ) -> tuple[np.ndarray, list[str], np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    users = [f"u{i % accounts}" for i in range(n)]
    times = (np.arange(n) // accounts) * 1200.0  # one row per account per scoring window
    return np.full((n, NT), -1.0), users, times, rng


def test_block_maxima_one_per_account_and_hour() -> None:
    v = np.array([[1.0], [3.0], [2.0], [5.0]])
    got = block_maxima(v, ["a", "a", "b", "a"], np.array([0.0, 1200.0, 0.0, 3600.0]))
    assert sorted(got[:, 0].tolist()) == [2.0, 3.0, 5.0]


def test_level_is_empirical_with_room_and_never_below_what_the_rows_show() -> None:
    blocks = np.arange(1000, dtype=float)
    assert level_for(blocks, 20) == pytest.approx(979, abs=1)  # 20 blocks above
    tight = np.random.default_rng(1).uniform(0.0, 0.2, 3000)
    lv = level_for(tight, 0.5)
    assert lv >= tight.max()  # fewer than one allowed: above every block
    assert lv < 0.3  # a bounded tail is not extrapolated far


def test_each_count_gets_its_own_level_within_floor_and_ceiling() -> None:
    ex, users, times, rng = _held()
    ex[:, E] = rng.uniform(-1.0, 0.2, len(ex))  # events: never 1.25x beyond the top
    ex[:, S] = rng.exponential(0.2, len(ex))  # customers: one report touches hundreds
    levels, fitted = calibrate_levels(ex, users, times, allowed=2.0)
    assert levels[E] == LEVEL_FLOOR  # a quiet count is read from 1.5x beyond on
    assert fitted[E] < LEVEL_FLOOR
    assert LEVEL_FLOOR < levels[S] <= LEVEL_MAX
    assert (block_maxima(ex, users, times)[:, S] >= levels[S]).sum() <= 2  # as allowed
    noisy = ex.copy()
    noisy[:, S] = rng.exponential(5.0, len(ex))
    levels, fitted = calibrate_levels(noisy, users, times, allowed=2.0)
    assert levels[S] == LEVEL_MAX  # 10x beyond always alerts, however noisy
    assert fitted[S] > LEVEL_MAX


def test_counts_rare_together_scale_their_levels_up() -> None:
    """Every count alone stays within the allowance, but rows rare in different counts add
    up: the levels are raised together until the rows show no more than allowed."""
    ex, users, times, rng = _held(n=6000, accounts=300)
    for j in range(NT):
        ex[:, j] = rng.uniform(-1.0, 0.3, len(ex))
    levels, _ = calibrate_levels(ex, users, times, allowed=1.0, floor=0.05)
    z = (block_maxima(ex, users, times) / levels).max(axis=1)
    assert (z >= 1.0).sum() <= 1


def test_a_small_organisation_gets_the_floor_not_its_noise() -> None:
    """100 accounts' held-out fortnight: a few hundred rows per count."""
    ex, users, times, rng = _held(n=3000, accounts=100, seed=3)
    ex[:, E] = rng.uniform(-1.5, 0.1, len(ex))  # counts are bounded: a busy hour, not 10x
    levels, fitted = calibrate_levels(ex, users, times, allowed=0.08)
    assert fitted[E] >= ex[:, E].max()  # above everything the rows show
    assert levels[E] == LEVEL_FLOOR


def test_the_calibration_sets_levels_for_hourly_actions_and_10x_for_the_rest() -> None:
    ex, users, times, rng = _held()
    ex[:, E] = rng.uniform(-1.0, 0.2, len(ex))
    forest = rng.uniform(0.3, 0.6, len(ex))
    cal = calibrate_with_tail(forest, ex, users, times, account_days=2000, target=0.5)
    assert cal.tail_levels is not None
    lv = np.asarray(cal.tail_levels)
    assert cal.tail_threshold == 1.0
    assert lv[E] == LEVEL_FLOOR
    assert np.all(lv[~SHORT] == LEVEL_MAX)
    assert lv[S] == LEVEL_MAX  # one ordinary report touches hundreds of customers
    doc = cal.to_dict()
    assert doc["tail_levels_times"]["events_1h"] == 1.5
    assert doc["tail_levels_times"]["events_7d"] == 10.0


def test_a_burst_beyond_its_level_alerts_whatever_the_forest_says() -> None:
    levels = np.full(NT, LEVEL_MAX)
    levels[E] = LEVEL_FLOOR
    model = AnomalyModel("isolation_forest", (), threshold=0.6, tail_threshold=1.0,
                         tail_levels=levels)
    ex = np.full((3, NT), -1.0)
    ex[:, E] = np.log([1.2, 2.0, 4.0])  # events in the hour: 1.2x, 2x, 4x beyond the top
    ex[:, S] = math.log(8.0)  # customers 8x beyond: under its level (10x)
    s = model.combine(np.full(3, 0.45), model.tail_of(ex))
    assert s[0] < model.threshold  # no count at its level: the forest decides
    assert s[1] >= model.threshold
    assert s[1] < s[2]
    assert times_beyond(levels, EVENTS_1H, 1.0) == pytest.approx(LEVEL_FLOOR)
    assert alerting_times(levels, 1.0, EVENTS_1H) == 1.5
    assert alerting_times(levels, 1.0, None) is None
    assert alerting_times(None, math.log(10.0), None) == 10.0


def test_an_alert_by_a_low_level_says_how_far_beyond_it_is() -> None:
    """Events 1.7x beyond both ranges alert at a 1.5x level: the words say "1.7x the top of
    both ranges", which a 3x-and-up rule of thumb would have left out."""
    from watchdog.anomaly.explain import explain
    from watchdog.anomaly.vocabulary import FEATURE_NAMES, NW

    model = AnomalyModel("isolation_forest", FEATURE_NAMES, threshold=0.6,
                         quantiles=np.zeros((3, len(FEATURE_NAMES))))
    raw, mean, var = np.zeros(NW), np.zeros(NW), np.zeros(NW)
    raw[EVENTS_1H] = math.log1p(35.0)  # 35 events; usually 4 (0-19), peers up to 19
    mean[EVENTS_1H], var[EVENTS_1H] = math.log1p(4.0), 0.5
    peer_q = np.zeros((3, NW))
    peer_q[:, EVENTS_1H] = [math.log1p(1.0), math.log1p(5.0), math.log1p(19.0)]
    x = np.zeros(len(FEATURE_NAMES))
    drivers, text = explain(model, x, raw, mean, var, peer_q, "billing", first=EVENTS_1H)
    assert drivers[0]["feature"] == "events_1h"
    assert "events in the last hour: 35" in text
    assert "usually 0-20 for this account" in text
    assert "1.7x the top of both ranges" in text  # 36 / 21
    _, quiet = explain(model, x, raw, mean, var, peer_q, "billing")
    assert "the top of both ranges" not in quiet  # not the tail's count: from 3x only


EVENTS_20M = WINDOW_FEATURES.index("events_20m")
E20 = int(np.flatnonzero(TAIL_COLS == EVENTS_20M)[0])


def test_the_last_20_minutes_get_their_own_level_and_alert_on_it() -> None:
    """A burst's onset: the hour's count still within its ranges while the last 20 minutes'
    count is 2.5x beyond its own (20-minute) ranges; its level is calibrated like the hour's,
    on its own held-out rows (noisier: a higher level), and the tail names it."""
    ex, users, times, rng = _held()
    ex[:, E] = rng.uniform(-1.0, 0.2, len(ex))
    ex[:, E20] = rng.uniform(-1.0, 0.6, len(ex))  # up to 1.8x beyond: 20 minutes are noisier
    forest = rng.uniform(0.3, 0.6, len(ex))
    cal = calibrate_with_tail(forest, ex, users, times, account_days=2000, target=0.5)
    lv = np.asarray(cal.tail_levels)
    assert SHORT[E20]
    assert lv[E] == LEVEL_FLOOR
    assert LEVEL_FLOOR < lv[E20] < LEVEL_MAX  # from its own rows, not the hour's
    assert cal.to_dict()["tail_levels_times"]["events_20m"] == round(math.exp(lv[E20]), 2)
    model = AnomalyModel("isolation_forest", (), threshold=0.6, tail_threshold=1.0,
                         tail_levels=lv)
    onset = np.full((2, NT), -1.0)
    onset[:, E] = math.log(1.1)  # the hour: 1.1x beyond, under its level
    onset[:, E20] = [math.log(1.5), math.log(2.5)]  # 20 minutes: 1.5x (within), 2.5x
    s = model.combine(np.full(2, 0.45), model.tail_of(onset))
    assert s[0] < model.threshold
    assert s[1] >= model.threshold
    assert alerting_times(lv, 1.0, EVENTS_20M) == round(math.exp(lv[E20]), 2)


def test_an_alert_on_the_last_20_minutes_reads_as_such() -> None:
    from watchdog.anomaly.explain import explain
    from watchdog.anomaly.vocabulary import FEATURE_NAMES, NW

    model = AnomalyModel("isolation_forest", FEATURE_NAMES, threshold=0.6,
                         quantiles=np.zeros((3, len(FEATURE_NAMES))))
    raw, mean, var = np.zeros(NW), np.zeros(NW), np.zeros(NW)
    raw[EVENTS_20M] = math.log1p(40.0)  # 40 events in 20 minutes; usually 1 (0-6)
    mean[EVENTS_20M], var[EVENTS_20M] = math.log1p(1.0), 0.35
    peer_q = np.zeros((3, NW))
    peer_q[:, EVENTS_20M] = [0.0, math.log1p(2.0), math.log1p(9.0)]
    x = np.zeros(len(FEATURE_NAMES))
    drivers, text = explain(model, x, raw, mean, var, peer_q, "billing", first=EVENTS_20M)
    assert drivers[0]["feature"] == "events_20m"
    assert drivers[0]["description"] == "events in the last 20 minutes"
    assert text.startswith("events in the last 20 minutes: 40 (usually 0-6 for this account")
    assert "0-9 for its peers in billing" in text
    assert "40x this account's usual" in text
    assert "; 4x the top of both ranges" in text  # 41 / 10
