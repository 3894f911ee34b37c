"""Scores that grow with the deviation (the tail score beside the forest), baselines that do
not learn the attack, the week window, new accounts scored against their peers at once."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.anomaly.conftest import T0, baseline, decode, event, make_engine
from tests.anomaly.test_features import last_values, run
from watchdog.alerts.model import Alert
from watchdog.anomaly import own_baseline
from watchdog.anomaly.batch import model_inputs, tail_excess, tail_inputs
from watchdog.anomaly.featurizer import Featurizer
from watchdog.anomaly.model import AnomalyModel
from watchdog.anomaly.stage import load_stage
from watchdog.anomaly.vocabulary import NW, TAIL_COLS, WINDOW_FEATURES

SUBJ_1H = WINDOW_FEATURES.index("subjects_1h")
EVENTS_1H = WINDOW_FEATURES.index("events_1h")


def test_beyond_reads_the_top_of_both_ranges() -> None:
    raw = np.zeros((3, NW))
    mean, var, p99 = np.zeros((3, NW)), np.zeros((3, NW)), np.zeros((3, NW))
    mean[:, SUBJ_1H] = math.log1p(20)  # usually 20 customers an hour, no spread
    p99[:, SUBJ_1H] = math.log1p(40)  # peers: up to 40
    raw[:, SUBJ_1H] = [math.log1p(410), math.log1p(30), math.log1p(410)]
    d, col = own_baseline.beyond(raw, mean, var, p99, np.array([False, False, True]))
    assert col[0] == SUBJ_1H
    assert math.exp(d[0]) == pytest.approx(411 / 41)  # 10x the peers' top, the higher one
    assert d[1] <= 0  # within the peers' range
    # a new account: against its peers only
    assert math.exp(d[2]) == pytest.approx(411 / 41)
    mean[2, SUBJ_1H] = math.log1p(400)  # its own "usual" is ignored while it is cold
    d2, _ = own_baseline.beyond(raw, mean, var, p99, np.array([False, False, True]))
    assert d2[2] == d[2]


def test_the_score_grows_with_the_deviation_whatever_the_forest_says() -> None:
    model = AnomalyModel("isolation_forest", (), threshold=0.65,
                         tail_threshold=math.log(10))
    forest = np.full(4, 0.45)  # an ordinary-looking vector for the forest
    tail = np.log([2.0, 10.0, 20.0, 50.0])
    s = model.combine(forest, tail)
    assert s[0] == 0.45  # 2x: the forest decides
    assert s[1] >= model.threshold  # 10x beyond both ranges alerts
    assert s[1] < s[2] < s[3]  # and more is more
    # a forest that isolates the vector wins
    assert model.combine(np.array([0.9]), np.array([0.0]))[0] == 0.9


def test_a_bucket_far_beyond_is_not_learnt_and_steps_are_clipped() -> None:
    mean = np.full((1, NW), math.log1p(20), np.float32)
    var = np.full((1, NW), 0.25, np.float16)
    p99 = np.full((1, NW), math.log1p(40))
    age = np.array([30 * 86400.0])
    sweep = np.full((1, NW), math.log1p(20))
    sweep[0, SUBJ_1H] = math.log1p(500)  # 12x the top of both ranges
    meta = np.array([[1000, 0, 0]], np.int32)  # commits, peer group, hour
    rows, gids = np.array([0]), np.array([0])
    own_baseline.learn(mean, var, meta, sweep, rows, p99, gids, age)
    assert mean[0, SUBJ_1H] == np.float32(math.log1p(20))  # not learnt at all
    # a busier hour within the peers' range is learnt, by a clipped step
    busy = np.full((1, NW), math.log1p(20))
    busy[0, SUBJ_1H] = math.log1p(39)
    before = float(mean[0, SUBJ_1H])
    own_baseline.learn(mean, var, meta, busy, rows, p99, gids, age)
    step = float(mean[0, SUBJ_1H]) - before
    assert 0 < step <= own_baseline.ALPHA_MIN[SUBJ_1H] * own_baseline.CLIP * 0.6


def test_a_sweep_does_not_become_the_accounts_usual() -> None:
    """Five hours of 300-500 customers an hour leave the account's usual range where it was
    (it grew from 1-51 to 0-943 when every bucket was learnt)."""
    docs = baseline(n_accounts=30, days=3, seed=2)
    t0 = T0 + 3 * 86400
    for h in range(5):
        for i in range(60):
            t = t0 + h * 3600 + i * 55
            docs.append(event(t, "u001", f"s{h}-{i}", "read", resource="billing.invoices",
                              categories=("identity",),
                              ids=tuple(f"c7{h}{i:03d}{k}" for k in range(7)), records=7))
    docs.sort(key=lambda d: d["@timestamp"])
    _, batches = run(docs, Featurizer(make_engine().policy, lambda _u, _t: "billing",
                                       warmup=0.0))
    before = [b for b in batches if "u001" in b.users and b.bucket * 600 < t0][-1]
    after = [b for b in batches if "u001" in b.users][-1]
    mean_before = float(before.own_mean[before.index("u001"), SUBJ_1H])
    mean_after = float(after.own_mean[after.index("u001"), SUBJ_1H])
    assert after.raw[after.index("u001"), SUBJ_1H] > math.log1p(250)
    assert abs(mean_after - mean_before) < 0.05, (mean_before, mean_after)


def test_the_week_window_adds_up_days() -> None:
    docs = [event(T0 + d * 86400 + i * 300, "u1", f"w{d}-{i}", "read", resource="crm.customers",
                  categories=("identity",), ids=(f"c{d}{i}",), records=1)
            for d in range(5) for i in range(10)]
    _, batches = run(docs)
    v = last_values(batches, "u1")
    assert v["events_7d"] == pytest.approx(50)
    assert v["events_24h"] == pytest.approx(10)
    assert v["records_7d"] == pytest.approx(50)
    # eight days later the first day has left the week
    late = [*docs, *[event(T0 + 8 * 86400 + i * 300, "u1", f"l{i}", "read",
                           resource="crm.customers", records=1) for i in range(3)]]
    _, batches = run(late)
    v = last_values(batches, "u1")
    # days 2, 3, 4 and today (days 0 and 1 have left)
    assert v["events_7d"] == pytest.approx(3 + 10 * 3)


def _alerts(model: Path, docs: list[dict]) -> list[Alert]:
    stage = load_stage(model, make_engine(), warmup=6 * 3600.0)
    out: list[Alert] = []
    for doc in docs:
        ev = decode(doc)
        out.extend(stage.observe(ev, ev.timestamp.timestamp()))
    return out + stage.flush()


def test_a_new_hire_is_compared_with_peers_from_the_first_hour(tiny_model: Path) -> None:
    """u029 (billing) appears for the first time and reads 600 customers in an hour: an
    alert within that hour, against its peers (it has no history of its own)."""
    docs = [d for d in baseline(n_accounts=30, days=2, seed=9) if d["user"]["id"] != "u029"]
    t = T0 + 86400 + 3 * 3600
    burst = [event(t + i * 30, "u029", f"n{i}", "read", resource="billing.invoices",
                   categories=("identity", "payment"),
                   ids=tuple(f"c8{i:03d}{k}" for k in range(10)), records=10)
             for i in range(60)]
    alerts = [a for a in _alerts(tiny_model, sorted([*docs, *burst],
                                                    key=lambda d: d["@timestamp"]))
              if a.user_id == "u029"]
    assert alerts
    a = alerts[0]
    assert a.ts < "2026-11-03T04:00"
    assert isinstance(a.explanation, dict)
    assert "a new account" in a.explanation["text"]
    assert a.subjects.pseudonyms


def test_the_stage_reads_the_same_inputs_and_tail_as_the_batch() -> None:
    """What the stage scores (only the model's columns, per batch) equals the batch's full
    computation, warm and cold rows alike."""
    fz = Featurizer(make_engine().policy, lambda u, _t: "billing", warmup=5 * 3600.0)
    docs = baseline(n_accounts=12, days=1, seed=4)
    late = T0 + 8 * 3600 + 1800  # a new account, in the day's last hour
    docs += [event(late + i * 60, "u099", f"n{i}", "read", resource="billing.invoices",
                   categories=("payment",), ids=(f"c{i}",), records=1) for i in range(5)]
    _, batches = run(sorted(docs, key=lambda d: d["@timestamp"]), fz)
    b = next(b for b in reversed(batches) if "u099" in b.users)
    assert b.warm.any()
    assert not b.warm.all()
    idx = np.arange(len(b))[::-1]
    x, d, col = b.scoring(idx)
    want_x = model_inputs(*b.inputs(idx))[0]
    want_d, want_col = tail_inputs(*b.inputs(idx))
    np.testing.assert_allclose(x, want_x, rtol=1e-6)
    np.testing.assert_allclose(d, want_d)
    np.testing.assert_array_equal(col, want_col)
    # with levels: the largest excess in units of its count's level
    levels = np.linspace(0.5, 2.0, len(TAIL_COLS))
    _, d2, col2 = b.scoring(idx, levels)
    ex = tail_excess(*b.inputs(idx))
    np.testing.assert_allclose(d2, (ex / levels).max(axis=1))
    np.testing.assert_array_equal(col2, TAIL_COLS[(ex / levels).argmax(axis=1)])


def test_the_weeks_baseline_moves_by_steps_float16_would_round_away() -> None:
    """A 7-day value's step (weight ~0.0006) is below float16's resolution at typical values:
    the mean is kept in float32 so that the week's baseline keeps learning."""
    week = WINDOW_FEATURES.index("events_7d")
    mean = np.full((1, NW), 5.0, np.float32)
    var = np.full((1, NW), 0.25, np.float16)
    x = np.full((1, NW), 5.3)
    p99 = np.full((1, NW), 9.0)
    for _ in range(200):
        own_baseline.learn(mean, var, np.array([[100_000, 0, 0]], np.int32), x, np.array([0]),
                           p99, np.array([0]), np.array([30 * 86400.0]))
    assert 5.0 + 0.01 < mean[0, week] < 5.0 + 0.2
