"""Anomaly scores go into the histogram a batch at a time, through prometheus_client's public
collector API: the same series as prometheus_client's own Histogram fed one by one."""

from __future__ import annotations

import math

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from watchdog.daemon.histogram import BatchHistogram
from watchdog.daemon.metrics import _SCORE, Metrics


def _series(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines()
            if line.startswith("watchdog_anomaly_score")]


def test_a_batch_of_scores_is_counted_as_prometheus_client_counts_one_by_one() -> None:
    rng = np.random.default_rng(3)
    scores = np.concatenate([rng.random(500), _SCORE, [-1.0, 5.0, 0.0, math.nan]])
    reference = CollectorRegistry()
    h = Histogram("watchdog_anomaly_score", "Anomaly scores of accounts' behaviour",
                  buckets=_SCORE, registry=reference)
    for s in scores.tolist():
        h.observe(s)
    batch, one = Metrics(), Metrics()
    batch.on_scores(scores)
    batch.on_scores(np.array([]))
    batch.on_scores(iter([]))
    for s in scores.tolist():
        one.on_score(s)
    want = [ln for ln in _series(generate_latest(reference)) if "_created" not in ln]
    assert _series(batch.exposition()) == want
    assert _series(one.exposition()) == want
    # every score but the NaN is in a bucket
    assert f"watchdog_anomaly_score_count {len(scores) - 1}.0" in want


def test_the_collector_is_registered_and_described() -> None:
    r = CollectorRegistry(auto_describe=True)
    hist = BatchHistogram("x_seconds", "doc", [0.1, 1.0], r)
    hist.observe_many([0.05, 0.5, 2.0])
    text = generate_latest(r).decode()
    assert 'x_seconds_bucket{le="0.1"} 1.0' in text
    assert 'x_seconds_bucket{le="1.0"} 2.0' in text
    assert 'x_seconds_bucket{le="+Inf"} 3.0' in text
    assert "x_seconds_sum 2.55" in text
