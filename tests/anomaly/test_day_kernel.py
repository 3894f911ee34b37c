"""The day scale's compiled steps (watchdog.anomaly.day_kernel), and the peers' quantile table
(watchdog.anomaly.peers._quantiles), give what the numpy they
replaced gave (tests/anomaly/numpy_reference.DayBaselinesNumpy), bit for bit: the usual
days, today's totals, the points given, the evidence and the days recorded, on random commits
far beyond the golden stream: days cut inside an hour (a zone at +05:30), rows handed to
another account and back, counts of 0 and beyond float32, every measure at the cap (ties),
and settings that arm every account at once."""

from __future__ import annotations

import numpy as np
import pytest

from tests.anomaly import numpy_reference as ref
from tests.anomaly.numpy_reference import DayBaselinesNumpy
from watchdog.anomaly.day_baseline import DayBaselines, DayConfig, DayEvidence
from watchdog.anomaly.peers import PeerBaselines
from watchdog.anomaly.vocabulary import NW, PEER_SCALE

BUCKET = 600
PER_HOUR = 3600 // BUCKET


def _commits(rng: np.random.Generator, days: int, accounts: int,
             ) -> list[tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Hour by hour: rows (user, slot, bucket, time, counts) of 1-6 buckets per active
    account, rank-major (as the featurizer commits) or shuffled."""
    slots = np.arange(accounts) * 3  # not dense
    owner = [f"u{k}" for k in range(accounts)]
    out = []
    for day in range(days):
        hours = np.sort(rng.choice(24, rng.integers(1, 6), replace=False))
        for h in hours.tolist():
            for k in rng.choice(accounts, rng.integers(0, 4), replace=False).tolist():
                # the featurizer gave the row to another account (or to the same one again)
                owner[k] = rng.choice([f"n{day}-{k}", f"u{k}", owner[k]])
            who = rng.choice(accounts, rng.integers(1, accounts + 1), replace=False)
            rows = []
            for k in who.tolist():
                n = int(rng.integers(1, PER_HOUR + 1))
                for b in np.sort(rng.choice(PER_HOUR, n, replace=False)).tolist():
                    rows.append((k, (20_000 + day) * 144 + h * PER_HOUR + b))
            rows.sort(key=lambda r: (r[1], r[0]) if rng.random() < 0.5 else (0, 0))
            if rng.random() < 0.3:
                rows = [rows[i] for i in rng.permutation(len(rows))]
            k_ = np.array([r[0] for r in rows])
            bks = np.array([r[1] for r in rows], np.int64)
            scale = rng.choice([1.0, 10.0, 100.0, 1e40], (len(rows), 1), p=[.5, .3, .19, .01])
            counts = np.floor(rng.random((len(rows), 3)) * scale * rng.random())
            counts[rng.random(len(rows)) < 0.1] = 0.0
            out.append(([owner[k] for k in k_.tolist()], slots[k_], bks,
                        bks * BUCKET + rng.random(len(rows)) * BUCKET, counts))
    return out


def _same(a: list[DayEvidence], b: list[DayEvidence]) -> bool:
    return [repr(e) for e in a] == [repr(e) for e in b]


@pytest.mark.parametrize(("seed", "shift", "config"), [
    (0, -4 * 3600, DayConfig()),
    (1, 5 * 3600 + 1800 - 4 * 3600, DayConfig()),  # the day cut inside an hour
    (2, -4 * 3600, DayConfig(min_days=1, learn_below=10.0, start=1.01, cap=1.0)),
    (3, 1800, DayConfig(min_days=0, idle_share=1e-3, pseudo=(0.0, 0.0, 0.0))),
    (4, 0, DayConfig(min_days=2, start=0.5)),
])
def test_the_day_kernel_is_numpys_day_scale(seed: int, shift: int, config: DayConfig) -> None:
    rng = np.random.default_rng(300 + seed)
    got, want = DayBaselines(config, cap=8), DayBaselinesNumpy(config, cap=8)
    got.record, want.record = {}, {}
    np.seterr(all="ignore")  # counts beyond float32 give inf and NaN points: compared too
    evidence = 0
    for users, slots, bks, t_last, counts in _commits(rng, 30, 40):
        a = got.observe(users, slots, bks, t_last, counts, BUCKET, shift)
        b = want.observe(users, slots, bks, t_last, counts, BUCKET, shift)
        assert _same(a, b)
        evidence += len(a)
        for x, y in zip(got._arrays(), want._arrays(), strict=True):
            assert x.tobytes() == y.tobytes()
    got.finish()
    want.finish()
    assert list(got.record.items()) == list(want.record.items())
    assert evidence > 20  # the comparison saw something
    assert len(got.record) > 50


@pytest.mark.parametrize("seed", range(4))
def test_the_quantile_kernel_is_numpys_quantile_table(seed: int) -> None:
    """PeerBaselines.quantile_table against its numpy (the peers' p10, p50, p99 the commit
    and the scoring read): sparse and dense histograms, weights from 1e-9 to 1e12, empty
    groups, an organisation with no weight (uniform prior), bins on the quantiles exactly."""
    rng = np.random.default_rng(400 + seed)
    peers = PeerBaselines(NW, BUCKET, PEER_SCALE)
    for g in range(rng.integers(1, 30)):
        peers.gid(f"g{g}")
    shape = peers.hist.shape
    scale = 10.0 ** rng.integers(-9, 13, shape)
    hist = np.floor(rng.random(shape) * 4) * scale * (rng.random(shape) < 0.2)
    if seed == 1:
        hist = np.round(rng.random(shape) * 3)  # small integers: cumulative shares tie
    hist[rng.integers(0, shape[0], 3)] = 0.0
    peers.hist[:] = hist
    peers.weight[:] = hist.sum(axis=(1, 2)) / NW
    if seed == 2:
        peers.hist[0], peers.weight[0] = 0.0, 0.0  # the organisation knows nothing yet
    got, want = peers.quantile_table(), ref.quantile_table(peers)
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    assert np.count_nonzero(got) > got.size // 10
