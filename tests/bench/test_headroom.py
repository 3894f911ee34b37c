"""The headroom tool's arithmetic: an hour's sum over an account's last six buckets (gaps
count 0, other accounts never), sums per key, and report seeds refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.anomaly_eval.headroom import hour_sums, main, per_key, poisson_gap


def test_hour_sums_read_the_accounts_own_last_six_buckets() -> None:
    users = np.array([0, 0, 0, 0, 1, 1])
    buckets = np.array([10, 11, 15, 17, 12, 13])
    x = np.array([1.0, 2.0, 4.0, 8.0, 100.0, 200.0])
    got = hour_sums(users, buckets, x)
    # bucket 15 sums 10..15; bucket 17 sums 12..17 (10 and 11 have left the hour); the
    # other account's buckets 12-13 never add to account 0
    assert got.tolist() == [1.0, 3.0, 7.0, 12.0, 100.0, 300.0]


def test_per_key_sums_rows_of_one_key() -> None:
    keys = np.array([5, 3, 5, 3, 7])
    first, sums = per_key(keys, np.array([[1.0], [2.0], [3.0], [4.0], [5.0]]))
    assert keys[first].tolist() == [3, 5, 7]
    assert sums[:, 0].tolist() == [6.0, 4.0, 5.0]


def test_report_seeds_are_refused(tmp_path: Path) -> None:
    bench = tmp_path / "report.json"
    bench.write_text(json.dumps({"config": {"seeds": [201, 202, 203], "seed_set": "report"},
                                 "cases": []}))
    assert main(["--bench", str(bench), str(tmp_path / "world")]) == 2


def test_poisson_gap_is_about_standard_deviations_whatever_the_mean() -> None:
    # at the mean the gap is 0; a count two standard deviations above a Poisson mean
    # (mean + 2 sqrt(mean)) is about 2 above, for a mean of 25 as of 400
    assert poisson_gap(np.array([9.0]), np.array([9.0]))[0] == 0.0
    for mean in (25.0, 100.0, 400.0):
        gap = poisson_gap(np.array([mean + 2 * mean**0.5]), np.array([mean]))[0]
        assert 1.8 < gap < 2.05
