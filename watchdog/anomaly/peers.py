"""Peer groups and their running baselines.

An account's peers are the accounts of its department (from the directory at event time), or
failing that of its roles. A group's baseline is a time-decayed mean and variance of its
members' feature vectors (log scale), pooled over every member and every active 5-minute
bucket, with a memory of about a week of event time, so that the time-of-day mix does not
move it. Small groups are shrunk towards the whole organisation.

Pure: numpy arithmetic only. The baselines learnt during training travel in the manifest
(group names are departments and role names, never people), so a replay that starts cold
still knows what peers usually do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from watchdog.events import UNSET, DirectoryRecord

ALL = "(organisation)"  # index 0: every account
UNKNOWN = "(not in the directory)"
TAU = 7 * 86400.0  # seconds of event time: the memory of a group's baseline
SHRINK = 20.0  # pseudo-observations of the organisation's baseline in every group


def group_key(rec: DirectoryRecord | None, event_roles: tuple[str, ...] = ()) -> str:
    """The peer group: ``department``, else ``role a+b``, else unknown."""
    if rec is not None and rec.department:
        return str(rec.department)
    roles = rec.roles if rec is not None and rec.roles is not UNSET else event_roles
    if roles:
        return "role " + "+".join(sorted(roles))
    return UNKNOWN


class PeerBaselines:
    """Decayed sums (weight, sum, sum of squares) per group over ``dim`` features."""

    def __init__(self, dim: int, bucket_seconds: float = 300.0) -> None:
        self.dim = dim
        self._decay_per_bucket = bucket_seconds / TAU
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.s0 = np.zeros(0)
        self.s1 = np.zeros((0, dim))
        self.s2 = np.zeros((0, dim))
        self.last = np.zeros(0, dtype=np.int64)
        self.gid(ALL)

    def gid(self, name: str) -> int:
        g = self.index.get(name)
        if g is None:
            g = self.index[name] = len(self.names)
            self.names.append(name)
            self.s0 = np.append(self.s0, 0.0)
            self.s1 = np.vstack([self.s1, np.zeros((1, self.dim))])
            self.s2 = np.vstack([self.s2, np.zeros((1, self.dim))])
            self.last = np.append(self.last, 0)
        return g

    def stats(self, gids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, variance) per row for the groups ``gids``, shrunk towards the organisation."""
        w0 = self.s0[0]
        if w0 > 0:
            gm = self.s1[0] / w0
            gv = np.maximum(self.s2[0] / w0 - gm * gm, 0.0)
        else:
            gm = np.zeros(self.dim)
            gv = np.ones(self.dim)
        s0 = self.s0[gids][:, None]
        mean = (self.s1[gids] + SHRINK * gm) / (s0 + SHRINK)
        second = (self.s2[gids] + SHRINK * (gv + gm * gm)) / (s0 + SHRINK)
        var = np.maximum(second - mean * mean, 0.0)
        return mean, var

    def update(self, gids: np.ndarray, x: np.ndarray, bucket: int) -> None:
        """Add the rows ``x`` (one per account, groups ``gids``) committed at ``bucket``."""
        present = np.unique(np.append(gids, 0))
        age = np.maximum(bucket - self.last[present], 0)
        keep = np.exp(-age * self._decay_per_bucket)
        self.s0[present] *= keep
        self.s1[present] *= keep[:, None]
        self.s2[present] *= keep[:, None]
        self.last[present] = bucket
        onehot = (gids[:, None] == np.arange(len(self.names))).astype(np.float64)
        onehot[:, 0] = 1.0  # the organisation: everyone
        self.s0 += onehot.sum(axis=0)
        self.s1 += onehot.T @ x
        self.s2 += onehot.T @ (x * x)

    # -- manifest ---------------------------------------------------------------------
    def to_dict(self, max_weight: float = 2000.0) -> dict[str, Any]:
        """Mean, variance and weight per group (for the manifest); no account in it."""
        out: dict[str, Any] = {}
        for g, name in enumerate(self.names):
            w = float(self.s0[g])
            if w <= 0:
                continue
            mean = self.s1[g] / w
            var = np.maximum(self.s2[g] / w - mean * mean, 0.0)
            out[name] = {"weight": round(min(w, max_weight), 3),
                         "mean": [round(float(v), 5) for v in mean],
                         "var": [round(float(v), 5) for v in var]}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], dim: int,
                  bucket_seconds: float = 300.0) -> PeerBaselines:
        peers = cls(dim, bucket_seconds)
        for name, st in data.items():
            mean = np.asarray(st["mean"], dtype=float)
            var = np.asarray(st["var"], dtype=float)
            w = float(st["weight"])
            if mean.shape != (dim,) or var.shape != (dim,) or not math.isfinite(w) or w < 0:
                raise ValueError(f"peer baseline '{name}' does not match the feature set")
            g = peers.gid(name)
            peers.s0[g] = w
            peers.s1[g] = mean * w
            peers.s2[g] = (var + mean * mean) * w
        peers.last[:] = -1  # set at the first update: no decay across the gap
        return peers

    def rebase(self, bucket: int) -> None:
        """Start the decay clock at ``bucket`` for baselines loaded from a manifest."""
        self.last[self.last < 0] = bucket
