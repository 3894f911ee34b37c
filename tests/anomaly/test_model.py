"""Fitting, scoring and calibrating the anomaly model."""

from __future__ import annotations

import numpy as np
import pytest

from watchdog.anomaly.calibration import calibrate, count_alerts, gpd_excess
from watchdog.anomaly.model import (
    LEVELWISE_ROWS,
    Forest,
    _FastForest,
    average_path_length,
    fit,
)


def test_count_alerts_applies_the_cool_down() -> None:
    scores = np.array([0.9, 0.9, 0.9, 0.1, 0.9, 0.9])
    users = ["a", "a", "a", "a", "b", "a"]
    times = np.array([0.0, 1000.0, 3600.0, 3700.0, 10.0, 9000.0])
    assert count_alerts(scores, users, times, 0.5) == 4  # a@0, a@3600, a@9000, b@10
    assert count_alerts(scores, users, times, 0.95) == 0


def test_calibration_meets_the_target_empirically() -> None:
    rng = np.random.default_rng(0)
    n_users, hours = 400, 24 * 20
    users = [f"u{i}" for i in rng.integers(0, n_users, 60_000)]
    times = rng.uniform(0, hours * 3600.0, 60_000)
    scores = rng.beta(8, 12, 60_000)
    account_days = n_users * 20
    cal = calibrate(scores, users, times, account_days=account_days, target=5.0)
    assert cal.method == "empirical"
    assert cal.heldout_rate <= 5.0
    assert cal.heldout_alerts >= 20
    assert cal.threshold_high > cal.threshold
    # a tighter target needs the tail fit, which stays below the largest possible score
    tight = calibrate(scores, users, times, account_days=account_days, target=0.1)
    assert tight.method == "tail fit"
    assert tight.threshold > cal.threshold
    assert tight.heldout_rate <= 0.5  # beyond what 8,000 account-days can show exactly
    assert tight.threshold < 1.0


def test_calibration_needs_data() -> None:
    with pytest.raises(ValueError, match="too little held-out"):
        calibrate(np.zeros(10), ["a"] * 10, np.zeros(10), account_days=1)


def test_gpd_tail_fit() -> None:
    rng = np.random.default_rng(1)
    assert gpd_excess(rng.exponential(1.0, 5000), 100) == pytest.approx(np.log(100), rel=0.1)
    assert gpd_excess(rng.uniform(0, 1, 5000), 1e9) <= 1.05  # bounded tails stay bounded


def test_fast_forest_equals_score_samples() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (2000, 7)).astype(np.float32)
    model = fit(x, [f"f{i}" for i in range(7)], n_estimators=15, seed=3)
    fast = _FastForest.build(model.estimator)
    assert fast is not None
    probe = rng.normal(0, 3, (300, 7)).astype(np.float32)
    assert np.allclose(fast.score(probe), -model.estimator.score_samples(probe), atol=1e-12)
    assert np.allclose(model.score(probe), -model.estimator.score_samples(probe), atol=1e-12)


def test_zscore_baseline_scores_the_largest_upward_deviation() -> None:
    x = np.zeros((100, 3))
    x[:, 0] = np.linspace(0, 1, 100)
    model = fit(x, ["a", "b", "c"], kind="zscore")
    s = model.score(np.array([[0.5, 0.0, 0.0], [0.5, 5.0, 0.0]]))
    assert s[1] > s[0]
    assert s[1] == pytest.approx(20.0)


def test_fit_checks_its_input() -> None:
    with pytest.raises(ValueError, match="features"):
        fit(np.zeros((10, 2)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="unknown model kind"):
        fit(np.zeros((10, 2)), ["a", "b"], kind="lstm")


def test_high_threshold_stays_reachable() -> None:
    rng = np.random.default_rng(4)
    scores = rng.beta(8, 12, 20_000)
    users = [f"u{i % 300}" for i in range(20_000)]
    times = rng.uniform(0, 20 * 86400.0, 20_000)
    cal = calibrate(scores, users, times, account_days=6000, target=0.05, ceiling=1.0)
    assert cal.threshold < cal.threshold_high <= cal.threshold + (1 - cal.threshold) / 2


def test_quiet_vectors_score_as_the_forest_would() -> None:
    rng = np.random.default_rng(5)
    x = np.abs(rng.normal(0, 1, (3000, 5))) * (rng.random((3000, 5)) < 0.1)
    model = fit(x, [f"f{i}" for i in range(5)], n_estimators=20)
    assert model.zero_score() == pytest.approx(float(model.score(np.zeros((1, 5)))[0]))


def test_forest_arrays_score_exactly_as_score_samples() -> None:
    """The tree-arrays scorer gives scikit-learn's numbers bit for bit: small batches (all
    trees at once), large ones (in slices), feature sub-sampling, and a row per leaf."""
    rng = np.random.default_rng(6)
    x = np.abs(rng.normal(0, 1, (3000, 6))) * (rng.random((3000, 6)) < 0.3)
    for max_features in (1.0, 0.5):
        model = fit(x, [f"f{i}" for i in range(6)], n_estimators=25, seed=1)
        if max_features != 1.0:
            from sklearn.ensemble import IsolationForest

            model.estimator = IsolationForest(n_estimators=25, max_features=max_features,
                                              random_state=0).fit(x)
        fast = _FastForest(Forest.of(model.estimator))
        for n in (1, 5, LEVELWISE_ROWS, LEVELWISE_ROWS + 1, 3 * LEVELWISE_ROWS + 5):
            probe = np.ascontiguousarray(
                np.abs(rng.normal(0, 2, (n, 6))) * (rng.random((n, 6)) < 0.5), np.float32)
            expected = -model.estimator.score_samples(probe)
            assert np.array_equal(fast.score(probe), expected)
            assert np.array_equal(model.score(probe), expected)


def test_non_finite_rows_are_scored_by_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    model = fit(np.abs(rng.normal(0, 1, (500, 3))), ["a", "b", "c"], n_estimators=10)
    x = np.array([[0.0, np.inf, 1.0], [0.5, 0.5, 0.5]], np.float32)
    assert np.array_equal(model.score(x), -model.estimator.score_samples(x))


def test_average_path_length_is_scikit_learns() -> None:
    """Seen through scikit-learn's public API (its ``_average_path_length`` is private):
    forests grown on sub-samples of 2 to 4096 rows score bit for bit as ``score_samples`` (the
    normaliser c(max_samples) and each leaf's c(size) enter it); and the values are the
    textbook ones, c(0) = c(1) = 0, c(2) = 1, beyond it 2 (ln(n-1) + gamma) - 2 (n-1)/n, below
    the exact 2 H(n-1) - 2 (n-1)/n by less than 1/(n-1)."""
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (4096, 3))
    probe = np.ascontiguousarray(rng.normal(0, 2, (300, 3)), np.float32)
    for m in (2, 3, 7, 256, 4096):
        est = IsolationForest(n_estimators=3, max_samples=m, random_state=0).fit(x)
        assert np.array_equal(_FastForest(Forest.of(est)).score(probe),
                              -est.score_samples(probe)), m
    n = np.array([0, 1, 2, 3, 7, 256, 4096, 100_000])
    c = average_path_length(n)
    assert c[:3].tolist() == [0.0, 0.0, 1.0]
    for k, got in zip(n[3:].tolist(), c[3:].tolist(), strict=True):
        exact = 2.0 * sum(1.0 / i for i in range(1, k)) - 2.0 * (k - 1) / k
        assert 0.0 < exact - got < 1.0 / (k - 1), k
