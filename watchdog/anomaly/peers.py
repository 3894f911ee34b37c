"""What the members of a peer group usually do.

An account's peers are the accounts of its department (from the directory at event time), or
failing that of its roles (:mod:`.peer_groups`). A group's baseline is, for each window
feature, a histogram of its members' values (log scale, 0.25-wide bins) pooled over every
member and every active 10-minute bucket, folded in once per hour of event time and decayed
with a memory of about a week, so that the time-of-day mix does not move it. Small groups are
shrunk towards the whole organisation.

Quantiles, not a mean and a standard deviation: behaviour is zero-inflated and skewed (most
hours have no export; a few have many), and "beyond what 99% of my peers' hours show" is both
what separates an insider and what an analyst understands.

Pure: numpy arithmetic only. The histograms learnt in training travel in the manifest (group
names are departments and role names, never people), so a replay that starts cold still
knows what peers usually do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from watchdog.anomaly.compiled import kernel
from watchdog.anomaly.stage_state import StateError, integer, pack, strings, unpack

ALL = "(organisation)"  # index 0: every account
TAU = 7 * 86400.0  # seconds of event time: the memory of a group's baseline
SHRINK = 20.0  # pseudo-observations of the organisation's distribution in every group
BIN = 0.25  # bin width on the features' log scale
NBINS = 80  # 0, then (0, 19.75]: e^20 bytes is 485 MB in an hour; more share the last bin
QUANTILES = (0.1, 0.5, 0.99)  # what ``quantiles`` returns
_Q = np.array(QUANTILES)
NCAT = 14  # data categories (bit i of a category mask)
RARE = 0.01  # a category the group touches in fewer of its active buckets is rare for it
RARE_AFTER = 200.0  # active buckets the organisation needs before anything counts as rare
# what PeerBaselines.state saves: (attribute, dtype, shape: g groups, d features, p queued)
_SAVED: tuple[tuple[str, type, tuple[int | str, ...]], ...] = (
    ("hist", np.float64, ("g", "d", NBINS)), ("weight", np.float64, ("g",)),
    ("cats", np.float64, ("g", NCAT)), ("last", np.int64, ("g",)),
    ("_pend_hist", np.uint32, ("p", "d", NBINS)), ("_pend_weight", np.float64, ("p",)),
    ("_pend_cats", np.float64, ("p", NCAT)))


@kernel("void(uint32[:, :, ::1], float64[::1], float64[:, ::1], int64[::1], float64[:, ::1], "
        "int64[::1], boolean[::1], float64[::1])")
def _count(hist: np.ndarray, weight: np.ndarray, cat_counts: np.ndarray, gids: np.ndarray,
           x: np.ndarray, cats: np.ndarray, take: np.ndarray, scale: np.ndarray) -> None:
    """Count rows ``take`` into their groups' queued bins, weights and categories, one pass
    per row. Bin 0 holds exact zeros (most hours have no export): a point mass, so that the
    99th percentile of "never" is 0, not somewhere inside the first bin."""
    for i in range(gids.shape[0]):
        if not take[i]:
            continue
        g = gids[i]
        for f in range(x.shape[1]):
            v = x[i, f]
            b = 0
            if v > 0:
                b = 1 + int(v * scale[f] / BIN)
                b = 1 if b < 1 else (NBINS - 1 if b > NBINS - 1 else b)
            hist[g, f, b] += 1
        weight[g] += 1.0
        c = cats[i]
        for j in range(NCAT):
            if (c >> j) & 1:
                cat_counts[g, j] += 1.0


@kernel("void(float64[:, :, ::1], uint32[:, :, ::1], int64[::1], float64[::1])")
def _fold(hist: np.ndarray, pend: np.ndarray, present: np.ndarray, keep: np.ndarray) -> None:
    """The hourly fold of the histograms in one pass where numpy took six (each the size of
    every group's histograms): groups ``present`` decay by ``keep``, then the queued counts
    ``pend`` are added to their groups and all of them to the organisation's (row 0). The
    same values: the counts and their sums are integers, exact in float64 in any order."""
    for k in range(present.shape[0]):
        g = present[k]
        f = keep[k]
        for j in range(hist.shape[1]):
            for b in range(hist.shape[2]):
                hist[g, j, b] *= f
    if pend.shape[0] == 0:
        return
    for j in range(hist.shape[1]):
        for b in range(hist.shape[2]):
            tot = 0.0
            for g in range(pend.shape[0]):
                v = np.float64(pend[g, j, b])
                tot += v
                if g:
                    hist[g, j, b] += v
            hist[0, j, b] += np.float64(pend[0, j, b]) + tot


_SHRINK, _BIN, _TINY = np.float64(SHRINK), np.float64(BIN), np.float64(1e-12)


@kernel("void(float64[:, :, ::1], float64[:, ::1], float64[::1], float64[:, :, ::1])")
def _quantiles(hist: np.ndarray, prior: np.ndarray, scale: np.ndarray, out: np.ndarray) -> None:
    """Each group's and feature's quantiles (``out``: groups, QUANTILES, dim) of its histogram
    with ``SHRINK`` times the organisation's shape ``prior`` mixed in: the first bin whose
    cumulative share reaches the quantile, interpolated within it. numpy's arithmetic step
    for step, where numpy took a dozen passes over (groups, dim, bins) arrays: the sum
    bin after bin (``cumsum``), shares, then per quantile the bins below it counted."""
    cdf = np.empty(NBINS)
    for g in range(hist.shape[0]):
        for f in range(hist.shape[1]):
            c = 0.0
            for b in range(NBINS):
                c += hist[g, f, b] + _SHRINK * prior[f, b]
                cdf[b] = c
            total = c if c > _TINY else _TINY
            for b in range(NBINS):
                cdf[b] = cdf[b] / total
            for k in range(_Q.shape[0]):
                q = _Q[k]
                idx = 0
                for b in range(NBINS):
                    if cdf[b] < q:
                        idx += 1
                if idx == 0:
                    out[g, k, f] = 0.0 / scale[f]
                    continue
                idx = idx if idx < NBINS - 1 else NBINS - 1
                below = cdf[idx - 1]
                span = cdf[idx] - below
                frac = (q - below) / (span if span > _TINY else _TINY)
                frac = frac if frac > 0.0 else 0.0
                frac = frac if frac < 1.0 else 1.0
                out[g, k, f] = (np.float64(idx - 1) + frac) * _BIN / scale[f]


class PeerBaselines:
    """Decayed histograms per group over ``dim`` features.

    ``scale`` maps each feature onto the bins (1 for log-scaled counts; e.g. 10 for a share
    in [0, 1], so that a bin is 2.5 percentage points).
    """

    def __init__(self, dim: int, bucket_seconds: float = 300.0,
                 scale: np.ndarray | None = None) -> None:
        self.dim = dim
        self.scale = np.ones(dim) if scale is None else np.asarray(scale, dtype=np.float64)
        self._decay_per_bucket = bucket_seconds / TAU
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.hist = np.zeros((0, dim, NBINS))
        self.weight = np.zeros(0)
        self.cats = np.zeros((0, NCAT))  # decayed active buckets touching each category
        self.last = np.zeros(0, dtype=np.int64)
        self._q: np.ndarray | None = None  # cached (groups, len(QUANTILES), dim)
        self._rare: np.ndarray | None = None  # cached category masks per group
        self._moments: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # cached per group
        # rows queued for the next refresh, counted per group (memory per group, not per
        # row: an hour of a million accounts' rows is queued): bins, rows, categories
        self._pend_hist = np.zeros((0, dim, NBINS), np.uint32)  # counts: half of float64
        self._pend_weight = np.zeros(0)
        self._pend_cats = np.zeros((0, NCAT))
        self._pend_rows = 0
        self._pend_no_cats = False  # a row came without categories: none are folded in
        self._pend_any = False  # anything queued (even no rows: the organisation decays)
        self.gid(ALL)

    def gid(self, name: str) -> int:
        g = self.index.get(name)
        if g is None:
            g = self.index[name] = len(self.names)
            self.names.append(name)
            self.hist = np.concatenate([self.hist, np.zeros((1, self.dim, NBINS))])
            self.weight = np.append(self.weight, 0.0)
            self.cats = np.vstack([self.cats, np.zeros((1, NCAT))])
            self.last = np.append(self.last, self.last[0] if g else 0)
            self._q = self._rare = None
            self._moments = {}
        return g

    def add(self, gids: np.ndarray, x: np.ndarray, cats: np.ndarray | None = None,
            only: np.ndarray | None = None) -> None:
        """Queue rows for the next :meth:`refresh` (the baselines move once an hour), counted
        per group and bin as they come (exact: sums of ones), so that what is queued does not
        grow with the rows; ``only``: which rows (all if None)."""
        self._pend_any = True
        if not len(gids):
            return
        n = len(self.names)
        if len(self._pend_weight) < n:
            grow = n - len(self._pend_weight)
            self._pend_hist = np.concatenate([self._pend_hist,
                                              np.zeros((grow, self.dim, NBINS), np.uint32)])
            self._pend_weight = np.append(self._pend_weight, np.zeros(grow))
            self._pend_cats = np.vstack([self._pend_cats, np.zeros((grow, NCAT))])
        take = np.ones(len(gids), bool) if only is None else only
        _count(self._pend_hist, self._pend_weight, self._pend_cats,
               np.ascontiguousarray(gids, np.int64), np.ascontiguousarray(x, np.float64),
               np.zeros(len(gids), np.int64) if cats is None else
               np.ascontiguousarray(cats, np.int64), take, self.scale)
        self._pend_rows += int(take.sum())
        if cats is None:
            self._pend_no_cats = True

    def refresh(self, bucket: int) -> None:
        """Fold the queued rows in, as of ``bucket``."""
        if not self._pend_any:
            return
        n = len(self._pend_weight)
        pend = self._pend_hist
        weight, cats = self._pend_weight, self._pend_cats
        rows, no_cats = self._pend_rows, self._pend_no_cats
        self._pend_hist = np.zeros((0, self.dim, NBINS), np.uint32)
        self._pend_weight = np.zeros(0)
        self._pend_cats = np.zeros((0, NCAT))
        self._pend_rows, self._pend_no_cats, self._pend_any = 0, False, False
        present = np.unique(np.append(np.flatnonzero(weight), 0))
        # the groups present decay, then every row counts for its group and the organisation
        _fold(self.hist, pend, present, self._decay(present, bucket))
        if not no_cats and n:
            self.cats[:n] += cats
            self.cats[0] += cats.sum(axis=0)
        self.weight[:n] += weight
        self.weight[0] += rows
        self._changed(present, bucket)

    def update(self, gids: np.ndarray, x: np.ndarray, bucket: int,
               cats: np.ndarray | None = None) -> None:
        """Add the rows ``x`` (one per account, groups ``gids``) committed at ``bucket``;
        ``cats``: each row's category mask in the bucket (queued and folded in at once)."""
        self.add(gids, x, cats)
        self.refresh(bucket)

    def _decay(self, present: np.ndarray, bucket: int) -> np.ndarray:
        """The weights and categories of groups ``present`` decay; returns by how much (the
        histograms' factor: :func:`_fold` applies it)."""
        age = np.maximum(bucket - self.last[present], 0)
        keep: np.ndarray = np.exp(-age * self._decay_per_bucket)
        self.weight[present] *= keep
        self.cats[present] *= keep[:, None]
        return keep

    def _changed(self, present: np.ndarray, bucket: int) -> None:
        self.last[present] = bucket
        self._q = None
        self._rare = None
        self._moments = {}

    def _prior(self) -> np.ndarray:
        """The organisation's shape, (dim, NBINS), summing to 1 per feature (uniform, cold)."""
        org = self.hist[0]
        w0 = self.weight[0]
        return org / w0 if w0 > 0 else np.full((self.dim, NBINS), 1.0 / NBINS)

    def _effective(self) -> np.ndarray:
        """Histograms with the organisation's shape mixed in as pseudo-observations."""
        return self.hist + SHRINK * self._prior()[None]

    def quantiles(self, gids: np.ndarray) -> np.ndarray:
        """(k, len(QUANTILES), dim): each row's group's p10, p50, p99 (feature scale)."""
        table: np.ndarray = self.quantile_table()[gids]
        return table

    def quantile_table(self) -> np.ndarray:
        """(groups, len(QUANTILES), dim): every group's p10, p50, p99 (feature scale), as of
        now (a new array whenever the baselines move: never changed in place)."""
        if self._q is None:
            q = np.empty((len(self.names), len(QUANTILES), self.dim))
            _quantiles(self.hist, self._prior(), self.scale, q)
            self._q = q
        return self._q

    def rare_categories(self, gids: np.ndarray) -> np.ndarray:
        """(k,) category masks: what each row's group touches in under 1% of its active
        buckets (shrunk towards the organisation, so a new group is not all "rare")."""
        if self._rare is None:
            if self.weight[0] < RARE_AFTER:  # too early to tell (the first hours, cold)
                self._rare = np.zeros(len(self.names), dtype=np.int64)
            else:
                org = self.cats[0] / self.weight[0]
                freq = (self.cats + SHRINK * org[None]) / (self.weight[:, None] + SHRINK)
                rare = freq < RARE
                self._rare = (rare.astype(np.int64) << np.arange(NCAT)).sum(axis=1)
        masks: np.ndarray = self._rare[gids]
        return masks

    def moments(self, gid: int) -> tuple[np.ndarray, np.ndarray]:
        """A group's mean and variance per feature (feature scale), from its histogram
        (cached until the baselines move: every new account of the group starts from it)."""
        got = self._moments.get(gid)
        if got is None and self.weight[0] < RARE_AFTER:  # nothing known yet: no prior
            got = self._moments[gid] = (np.zeros(self.dim), np.zeros(self.dim))
        if got is None:
            h = self.hist[gid] + SHRINK * self._prior()
            centres = np.maximum(np.arange(NBINS) - 0.5, 0.0) * BIN
            total = np.maximum(h.sum(axis=1), 1e-12)
            mean = (h * centres).sum(axis=1) / total
            var = (h * (centres[None, :] - mean[:, None]) ** 2).sum(axis=1) / total
            got = self._moments[gid] = (mean / self.scale, var / self.scale**2)
        return got

    # -- manifest ---------------------------------------------------------------------
    def to_dict(self, max_weight: float = 5000.0) -> dict[str, Any]:
        """Per group: weight and sparse histogram rows (for the manifest); no account."""
        if self._pend_any:
            self.refresh(int(self.last.max()))
        out: dict[str, Any] = {}
        for g, name in enumerate(self.names):
            w = float(self.weight[g])
            if w <= 0:
                continue
            factor = min(1.0, max_weight / w)
            h = self.hist[g] * factor
            rows = [[int(f), int(b), round(float(h[f, b]), 2)]
                    for f, b in zip(*np.nonzero(h >= 0.005), strict=True)]
            out[name] = {"weight": round(w * factor, 2), "bins": rows,
                          "categories": [round(float(c * factor), 2) for c in self.cats[g]]}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], dim: int, bucket_seconds: float = 300.0,
                  scale: np.ndarray | None = None) -> PeerBaselines:
        peers = cls(dim, bucket_seconds, scale)
        for name, st in data.items():
            w = float(st["weight"])
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"peer baseline '{name}' has a bad weight")
            g = peers.gid(name)
            for f, b, c in st["bins"]:
                if not (0 <= f < dim and 0 <= b < NBINS) or not c >= 0:
                    raise ValueError(f"peer baseline '{name}' does not match the feature set")
                peers.hist[g, int(f), int(b)] = float(c)
            peers.weight[g] = w
            cats = st.get("categories", [0.0] * NCAT)
            if len(cats) != NCAT or not all(c >= 0 for c in cats):
                raise ValueError(f"peer baseline '{name}' has bad category counts")
            peers.cats[g] = np.asarray(cats, dtype=np.float64)
        peers.last[:] = -1  # set at the first bucket: no decay across the gap
        return peers

    def rebase(self, bucket: int) -> None:
        """Start the decay clock at ``bucket`` for baselines loaded from a manifest."""
        self.last[self.last < 0] = bucket

    # -- saved state (watchdog.anomaly.stage_state) --------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything learnt and queued, as plain data (the caches are recomputed)."""
        return {"names": list(self.names), "flags": [self._pend_rows, self._pend_no_cats,
                                                     self._pend_any],
                **{k: pack(getattr(self, k)) for k, _, _ in _SAVED}}

    def load_state(self, doc: dict[str, Any]) -> None:
        """:meth:`state`'s document back (same ``dim``); :class:`StateError` if it does not
        fit, and then nothing is changed."""
        names = strings(doc["names"], "peers")
        if len(set(names)) != len(names) or not names or names[0] != ALL:
            raise StateError("peers: group names do not fit")
        n = {"g": len(names), "d": self.dim,
             "p": len(unpack(doc["_pend_weight"], np.float64, (None,), "peers"))}
        got = {k: unpack(doc[k], dt, [n[d] if isinstance(d, str) else d for d in shape],
                         "peers") for k, dt, shape in _SAVED}
        rows, no_cats, any_ = doc["flags"]
        if n["p"] > n["g"] or not isinstance(no_cats, bool) or not isinstance(any_, bool):
            raise StateError("peers: queued rows do not fit")
        integer(rows, "peers")
        self.names[:] = names  # (in place: batches hold the list)
        self.index = {g: i for i, g in enumerate(names)}
        for k, a in got.items():
            setattr(self, k, a)
        self._pend_rows, self._pend_no_cats, self._pend_any = rows, no_cats, any_
        self._q = self._rare = None
        self._moments = {}
