"""Anomaly scores go into the histogram a batch at a time: the same series as one by one."""

from __future__ import annotations

import math

import numpy as np

from watchdog.daemon.metrics import Metrics


def _series(m: Metrics) -> list[str]:
    return [line for line in m.exposition().decode().splitlines()
            if line.startswith("watchdog_anomaly_score")]


def test_a_batch_of_scores_is_counted_as_one_by_one() -> None:
    rng = np.random.default_rng(3)
    bounds = [b for b in Metrics().score._upper_bounds if math.isfinite(b)]
    scores = np.concatenate([rng.random(500), bounds, [-1.0, 5.0, 0.0, math.nan]])
    one, batch = Metrics(), Metrics()
    for s in scores.tolist():
        one.on_score(s)
    batch.on_scores(scores)
    batch.on_scores(np.array([]))
    assert _series(batch) == _series(one)
    # every score but the NaN is in a bucket
    assert f"watchdog_anomaly_score_count {len(scores) - 1}.0" in _series(one)
