"""Peer groups and their histogram baselines."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from watchdog.anomaly.peer_groups import UNKNOWN, group_key
from watchdog.anomaly.peers import ALL, PeerBaselines
from watchdog.events import DirectoryRecord


def rec(**kw: object) -> DirectoryRecord:
    doc = {"user_id": "u", "status": "active", "effective": "2025-01-01T00:00:00Z", **kw}
    return msgspec.convert(doc, DirectoryRecord)


def test_group_key() -> None:
    assert group_key(rec(department="billing", roles=["billing"])) == "billing"
    assert group_key(rec(roles=["sre", "dba"])) == "role dba+sre"
    assert group_key(None, ("support_agent",)) == "role support_agent"
    assert group_key(None) == UNKNOWN


def test_quantiles_follow_the_data_and_small_groups_shrink() -> None:
    peers = PeerBaselines(2)
    rng = np.random.default_rng(0)
    big = peers.gid("big")
    small = peers.gid("small")
    x = np.column_stack([rng.uniform(0, 4, 5000), np.zeros(5000)])
    peers.update(np.full(5000, big), x, bucket=1)
    peers.update(np.array([small]), np.array([[8.0, 8.0]]), bucket=1)
    q = peers.quantiles(np.array([big, small]))
    assert q.shape == (2, 3, 2)
    p10, p50, p99 = q[0, :, 0]
    assert p10 == pytest.approx(0.4, abs=0.15)
    assert p50 == pytest.approx(2.0, abs=0.15)
    assert p99 == pytest.approx(3.96, abs=0.15)
    assert q[0, 2, 1] < 0.25  # always zero
    # one observation in a group: mostly the organisation's shape
    assert q[1, 1, 0] == pytest.approx(2.0, abs=0.3)


def test_manifest_round_trip() -> None:
    peers = PeerBaselines(3, scale=np.array([1.0, 1.0, 10.0]))
    g = peers.gid("support")
    x = np.random.default_rng(1).uniform(0, 1, (300, 3))
    peers.update(np.full(300, g), x, bucket=5)
    doc = peers.to_dict()
    assert set(doc) == {ALL, "support"}
    again = PeerBaselines.from_dict(doc, 3, scale=np.array([1.0, 1.0, 10.0]))
    again.rebase(5)
    gids = np.array([again.gid("support")])
    assert np.allclose(again.quantiles(gids), peers.quantiles(np.array([g])), atol=0.01)
    with pytest.raises(ValueError, match="does not match the feature set"):
        PeerBaselines.from_dict(doc, 2)


def test_moments_follow_the_baselines() -> None:
    """A group's mean and variance (where a new account starts from) are cached until the
    baselines move, and are what the whole-histogram arithmetic gives."""
    peers = PeerBaselines(2)
    g = peers.gid("support")
    rng = np.random.default_rng(2)
    peers.update(np.full(400, g), rng.uniform(0, 2, (400, 2)), bucket=1)
    mean, _ = peers.moments(g)
    assert peers.moments(g)[0] is mean  # cached
    h = peers._effective()[g]
    centres = np.maximum(np.arange(h.shape[1]) - 0.5, 0.0) * 0.25
    total = h.sum(axis=1)
    assert np.array_equal(mean, (h * centres).sum(axis=1) / total)
    peers.update(np.full(400, g), rng.uniform(3, 5, (400, 2)), bucket=2)
    again, _ = peers.moments(g)
    assert np.all(again > mean)  # moved with the baselines
    other = peers.gid("billing")
    assert peers.moments(other)[0].shape == (2,)


def test_rows_queued_per_group_fold_in_as_all_at_once() -> None:
    """Rows queued over an hour (counted per group as they come, several calls, one of them
    empty) fold in exactly as the same rows folded in at once."""
    rng = np.random.default_rng(5)
    dim = 6
    queued, direct = PeerBaselines(dim, 600.0), PeerBaselines(dim, 600.0)
    for p in (queued, direct):
        for name in ("a", "b", "c"):
            p.gid(name)
    for hour in range(4):
        parts = [(rng.integers(1, 4, k), np.abs(rng.normal(0, 3, (k, dim))),
                  rng.integers(0, 1 << 14, k)) for k in (40, 0, 25)]
        for gids, x, cats in parts:
            queued.add(gids, x, cats)
        bucket = 100 + 6 * hour
        queued.refresh(bucket)
        gids, x, cats = (np.concatenate(c) for c in zip(*parts, strict=True))
        direct.update(gids, x, bucket, cats)
        assert np.array_equal(queued.hist, direct.hist)
        assert np.array_equal(queued.weight, direct.weight)
        assert np.array_equal(queued.cats, direct.cats)
        assert np.array_equal(queued.last, direct.last)
