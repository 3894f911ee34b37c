"""Which rows a periodic retraining may learn from."""

from __future__ import annotations

import numpy as np
import pytest

from watchdog.anomaly.retrain import select_training_rows

H, D = 3600.0, 86400.0


def test_rolling_window_and_alert_windows_left_out() -> None:
    now = 40 * D
    users = ["a", "a", "a", "a", "b", "b", "c"]
    times = np.array([5 * D, 20 * D, 30 * D - 2 * H, 30 * D + 2 * H, 30 * D - 2 * H,
                      39 * D, 41 * D])
    alerts = {"a": [30 * D], "c": [1 * D]}
    keep = select_training_rows(users, times, alerts, now=now, days=28)
    # a@5d: before the rolling window; a@20d kept; a 2h before and 2h after its alert: out
    # (the day before it, and more than the hour after: 2h after is kept); b kept; c: future
    assert keep.tolist() == [False, True, False, True, True, True, False]


def test_custom_margins_and_no_window() -> None:
    users = ["a"] * 4
    times = np.array([0.0, 50 * 60.0, 100 * 60.0, 200 * 60.0])
    keep = select_training_rows(users, times, {"a": [60 * 60.0]}, now=None, before=15 * 60,
                                after=45 * 60)
    assert keep.tolist() == [True, False, False, True]
    assert select_training_rows(users, times, {}, now=None).all()


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        select_training_rows(["a"], np.zeros(2), {}, now=None)
