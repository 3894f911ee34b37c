"""The featurizer's output on a fixed stream equals the recorded one (golden values).

The featurizer is optimised for speed and memory (issue 13); its vectors must not change
while it is. ``featurizer_golden.npz`` was recorded from main before that work (2,433 vectors,
one per account and bucket: every window value, the own baseline, the model's inputs, the
tail deviation, the peer group, warm-up, the cited event ids). A deliberate change of the features
re-records it (and bumps FEATURE_VERSION if a meaning changed)::

    .venv/bin/python -m tests.anomaly.test_features_golden   # rewrites the file
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.anomaly.conftest import DEPTS, T0, baseline, decode, event, insider_docs, make_engine
from watchdog.anomaly.batch import FeatureBatch
from watchdog.anomaly.featurizer import Featurizer

GOLDEN = Path(__file__).with_name("data") / "featurizer_golden.npz"


def stream() -> list[dict]:
    """Three weeks of office work by 24 accounts with a gap, an insider's night, and the odd
    cases: failed logins, mail in and out, subject counts, long id lists, late events."""
    rng = random.Random(13)
    docs = baseline(n_accounts=24, days=3, seed=11)
    docs += [d for d in insider_docs() if d["event"]["id"].startswith("x")]
    docs += baseline(n_accounts=18, days=2, seed=12, start=T0 + 19 * 86400)  # after the gap
    t = T0 + 86400 + 10 * 3600
    for i in range(40):
        uid = f"u{rng.randint(0, 23):03d}"
        at = t + rng.uniform(0, 6 * 3600)
        kind = i % 5
        if kind == 0:
            docs.append(event(at, uid, f"f{i}", "login", outcome="failure",
                              ip=f"10.7.0.{i}"))
        elif kind == 1:
            docs.append(event(at, uid, f"m{i}", "email", resource="crm.customers",
                              categories=("contact",), ids=(f"c{i:05d}",),
                              dest={"kind": "email", "domain": "gmail.example"}))
        elif kind == 2:
            docs.append(event(at, uid, f"n{i}", "export", resource="crm.orders",
                              ids=(f"c{i:05d}",), count=rng.randint(5, 90), records=9,
                              nbytes=10_000))
        elif kind == 3:
            docs.append(event(at, uid, f"b{i}", "export", resource="crm.customers",
                              categories=("identity", "minor"),
                              ids=tuple(f"c{k:05d}" for k in range(300)), records=300))
        else:
            docs.append(event(at, uid, f"p{i}", "print", resource="billing.payments",
                              categories=("payment",), dest={"kind": "third_party"}))
    docs.sort(key=lambda d: d["@timestamp"])
    # a few late events (out of order by up to 20 minutes)
    for i in range(0, len(docs) - 50, 977):
        docs.insert(i + 40, docs.pop(i))
    return docs


def features(docs: list[dict], capacity: int = 1024) -> dict[str, np.ndarray]:
    fz = Featurizer(make_engine().policy,
                    lambda u, _t: DEPTS[int(u[1:]) % len(DEPTS)], warmup=6 * 3600.0,
                    idle_ttl=5 * 86400.0, capacity=capacity)
    batches: list[FeatureBatch] = []
    evs = [decode(d) for d in docs]
    items = [(ev, ev.timestamp.timestamp()) for ev in evs]
    for i in range(0, len(items), 53):
        batches.extend(fz.observe_many(items[i:i + 53]))
        if i % 7 == 0:
            b = fz.commit()
            if b is not None:
                batches.append(b)
    b = fz.flush()
    if b is not None:
        batches.append(b)
    parts = [p for b in batches for p in b.by_bucket()]
    out: dict[str, list[np.ndarray]] = {k: [] for k in (
        "bucket", "user", "gid", "raw", "own_mean", "own_var", "t_last", "warm", "x", "tail",
        "tail_col", "eids")}
    for p in parts:
        idx = np.arange(len(p))
        x, tail, col = p.scoring(idx)
        out["bucket"].append(p.buckets)
        out["user"].append(np.array([int(u[1:]) for u in p.users]))
        out["gid"].append(p.gids)
        out["raw"].append(p.raw)
        out["own_mean"].append(p.own_mean)
        out["own_var"].append(p.own_var)
        out["t_last"].append(p.t_last)
        out["warm"].append(p.warm)
        out["x"].append(x)
        out["tail"].append(tail)
        out["tail_col"].append(col)
        out["eids"].append(np.array(["|".join(p.event_ids(j)) for j in idx]))
    return {k: np.concatenate(v) for k, v in out.items()}


@pytest.mark.parametrize("capacity", [1024, 5])
def test_the_featurizer_gives_the_recorded_features(capacity: int) -> None:
    """... also when its row arrays grow (in place) while accounts are tracked."""
    got = features(stream(), capacity)
    want = np.load(GOLDEN)
    assert set(want.files) == set(got)
    assert len(got["raw"]) > 2000
    for k in want.files:
        assert got[k].shape == want[k].shape, k
        assert got[k].dtype == want[k].dtype, k
        assert np.array_equal(got[k], want[k]), f"{k} differs from the recorded values"


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **features(stream()))
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes)", file=sys.stderr)
