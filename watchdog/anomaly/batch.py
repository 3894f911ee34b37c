"""The batch type: the feature vectors of accounts committed together (:class:`FeatureBatch`)
and how the model's inputs are read from them (:func:`model_inputs`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from watchdog.anomaly.own_baseline import excess, largest
from watchdog.anomaly.scoring_kernel import score_inputs
from watchdog.anomaly.stage_state import (
    StateError,
    number,
    pack,
    sids_in,
    sids_out,
    strings,
    unpack,
)
from watchdog.anomaly.vocabulary import (
    FEATURE_NAMES,
    FLOOR,
    MODEL_FEATURES,
    NOVELTY_COLS,
    NW,
    TAIL_COLS,
    WINDOW_FEATURES,
    to_natural,
)

EIDS_KEPT = 5  # event ids cited by an alert: the account's last ones in the bucket
# an event's subject ids as kept until an alert cites them: a lone id as the string itself
# (most events have one: no tuple held per event for an hour, which the cyclic collector
# would traverse again and again: ~0.2 s per 300,000 events), else the event's tuple
Sids = str | tuple[str, ...]
MAX_SUBJECTS = 10  # subjects (pseudonymised) an alert lists: those of its cited events

_FLOOR_VAR = FLOOR**2
# the model's columns: (model column, window value column) against the peers, then self
_WIDX = {n: i for i, n in enumerate(WINDOW_FEATURES)}
_M_PEER = [(j, _WIDX[w]) for j, (w, k) in enumerate(MODEL_FEATURES) if k == "peers"]
_M_SELF = [(j, _WIDX[w]) for j, (w, k) in enumerate(MODEL_FEATURES) if k == "self"]
_M_PEER_J = np.array([j for j, _ in _M_PEER])
_M_PEER_W = np.array([w for _, w in _M_PEER])
_M_SELF_J = np.array([j for j, _ in _M_SELF])
_M_SELF_W = np.array([w for _, w in _M_SELF])
_FLOOR_P, _FLOOR_S = FLOOR[_M_PEER_W], _FLOOR_VAR[_M_SELF_W]
# the model's peer columns of never-before counts (0 for an account within its warm-up)
_M_NOVEL_J = np.array([j for j, w in _M_PEER if w in set(NOVELTY_COLS.tolist())], np.int64)
_NOVEL = np.isin(np.arange(len(WINDOW_FEATURES)), NOVELTY_COLS)  # per window value
_NO_LEVELS = np.ones(len(TAIL_COLS))


class FeatureBatch:
    """Feature vectors committed together: one per account and bucket it was active in (the
    buckets of at most one hour), each as of the end of its bucket. Rows come in no particular
    order: ``buckets`` and ``accounts`` say whose and when.

    The window values and the baselines they are compared with are kept; the model's inputs
    (and the relative views they are chosen from) are computed from them when first asked
    for, so that a consumer that needs them for only some rows (the stage scores an
    account's latest vector only) computes them for those rows only (:func:`model_inputs`).
    """

    __slots__ = ("_peer_q", "_rel", "accounts", "buckets", "closed_before", "counts", "eid_ends",
                 "eid_starts", "eids", "gids", "group_names", "own_mean", "own_var",
                 "quantiles", "raw", "sids", "t_last", "users", "warm")

    def __init__(
        self,
        buckets: np.ndarray,  # (k,) each row's bucket (epoch seconds // BUCKET)
        users: list[str],
        gids: np.ndarray,  # (k,) peer group index into ``group_names``
        group_names: list[str],  # the peer baselines' names (only ever appended to)
        raw: np.ndarray,  # (k, NW) the window values (log scale; shares as they are)
        t_last: np.ndarray,  # (k,) event time of each account's last event in the bucket
        warm: np.ndarray,  # (k,) bool: account tracked for longer than the warm-up
        own_mean: np.ndarray,  # (k, NW) the account's own baseline before this bucket
        own_var: np.ndarray,
        quantiles: np.ndarray,  # (groups, 3, NW) the peer groups' p10, p50, p99 then
        eids: list[str],  # each row's last event ids in its bucket, in order
        eid_ends: np.ndarray,  # (k,) row j's ids end at eid_ends[j] ...
        eid_starts: np.ndarray,  # ... and start here
        accounts: np.ndarray,  # (k,) the same number for the same account
        closed_before: float,  # every bucket before this one is committed
        sids: list[Sids] | None = None,  # the subject ids of the events of ``eids``
        counts: np.ndarray | None = None,  # (k, 3) the bucket's own events, exports, subjects
    ) -> None:
        self.buckets = buckets
        self.accounts = accounts
        self.users = users
        self.gids = gids
        self.group_names = group_names
        self.raw = raw
        self.t_last = t_last
        self.warm = warm
        self.own_mean = own_mean
        self.own_var = own_var
        self.quantiles = quantiles
        self.eids = eids
        self.eid_ends = eid_ends
        self.eid_starts = eid_starts
        self.closed_before = closed_before
        self.sids = sids if sids is not None else [()] * len(eids)
        self.counts = counts if counts is not None else np.zeros((len(users), 3), np.float32)
        self._peer_q: np.ndarray | None = None
        self._rel: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def peer_q(self) -> np.ndarray:
        """(k, 3, NW) each account's peer group's p10, p50, p99 (log scale)."""
        if self._peer_q is None:
            self._peer_q = self.quantiles[self.gids]
        return self._peer_q

    def _relative(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._rel is None:
            self._rel = model_inputs(self.raw, self.own_mean, self.own_var, self.peer_q,
                                     ~self.warm)
        return self._rel

    @property
    def x(self) -> np.ndarray:
        """(k, len(FEATURE_NAMES)) float32: the model's input."""
        return self._relative()[0]

    @property
    def rel_self(self) -> np.ndarray:
        """(k, NW) sd above the account's own baseline, beyond 1 (>= 0)."""
        return self._relative()[1].astype(np.float32)

    @property
    def rel_peer(self) -> np.ndarray:
        """(k, NW) how far above the peers' 99th percentile (>= 0)."""
        return self._relative()[2].astype(np.float32)

    def inputs(self, idx: np.ndarray,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``idx``' window values, own baseline, peer quantiles and whether they are
        cold (no history of their own yet): what :func:`model_inputs` computes the model's
        input from."""
        return (self.raw[idx], self.own_mean[idx], self.own_var[idx],
                self.quantiles[self.gids[idx]], ~self.warm[idx])

    def scoring(self, idx: np.ndarray, levels: np.ndarray | None = None,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``idx``' model inputs (float32), tail deviations (in units of ``levels``, if
        given) and the window values they come from: what the stage scores (only the columns
        the model reads are computed)."""
        k = len(idx)
        x = np.empty((k, len(FEATURE_NAMES)), np.float32)
        d, col = np.empty(k), np.empty(k, np.int64)
        score_inputs(np.ascontiguousarray(idx, np.int64),
                     np.ascontiguousarray(self.raw, np.float64),
                     np.ascontiguousarray(self.own_mean, np.float32),
                     np.ascontiguousarray(self.own_var, np.float32),
                     np.ascontiguousarray(self.quantiles, np.float64),
                     np.ascontiguousarray(self.gids, np.int64),
                     np.ascontiguousarray(self.warm, bool), _M_PEER_J, _M_PEER_W, _FLOOR_P,
                     _M_SELF_J, _M_SELF_W, _FLOOR_S, _M_NOVEL_J, TAIL_COLS, _NOVEL,
                     _NO_LEVELS if levels is None else np.ascontiguousarray(levels, np.float64),
                     levels is not None, x, d, col)
        return x, d, col

    def tail(self) -> tuple[np.ndarray, np.ndarray]:
        """(k,) the tail deviation of every row and the window value it comes from."""
        return tail_inputs(*self.inputs(np.arange(len(self))))

    def tail_excess(self) -> np.ndarray:
        """(k, len(TAIL_COLS)) every row's excess of each count the tail reads (what the
        tail's levels are calibrated on)."""
        return tail_excess(*self.inputs(np.arange(len(self))))

    def __len__(self) -> int:
        return len(self.users)

    @property
    def bucket(self) -> int:
        """The latest bucket of the batch."""
        return int(self.buckets.max())

    def by_bucket(self) -> list[FeatureBatch]:
        """The batch split per bucket, in bucket order, accounts in order within a bucket (as
        committing bucket by bucket)."""
        order = np.lexsort((self.accounts, self.buckets))
        cuts = np.flatnonzero(np.diff(self.buckets[order])) + 1
        return [self.select(idx) for idx in np.split(order, cuts)]

    def group(self, j: int) -> str:
        return self.group_names[int(self.gids[j])]

    def event_ids(self, j: int, keep: int = EIDS_KEPT) -> tuple[str, ...]:
        """Account ``j``'s last ``keep`` (at most EIDS_KEPT) event ids in the bucket, oldest
        first."""
        end = int(self.eid_ends[j])
        start = int(self.eid_starts[j])
        return tuple(self.eids[max(start, end - keep):end]) if keep > 0 else ()

    def subject_ids(self, j: int, keep: int = MAX_SUBJECTS) -> tuple[str, ...]:
        """The raw subject ids of account ``j``'s cited events (:meth:`event_ids`), newest
        event first, at most ``keep`` distinct ones: an alert pseudonymises them."""
        end, start = int(self.eid_ends[j]), int(self.eid_starts[j])
        out: dict[str, None] = {}
        for ids in reversed(self.sids[start:end]):
            for sid in (ids,) if isinstance(ids, str) else ids:
                out[sid] = None
                if len(out) >= keep:
                    return tuple(out)
        return tuple(out)

    def values(self, j: int) -> dict[str, float]:
        """Account ``j``'s window values in natural units (counts, bytes, shares)."""
        return {n: to_natural(n, float(v)) for n, v in zip(WINDOW_FEATURES, self.raw[j],
                                                             strict=True)}

    def index(self, user_id: str) -> int:
        return self.users.index(user_id)

    def state(self) -> dict[str, Any]:
        """As plain data (watchdog.anomaly.stage_state; the group names are the peers')."""
        return {"arrays": [pack(getattr(self, n)) for n, _, _ in _ARRAYS],
                "users": self.users, "eids": self.eids, "sids": sids_out(self.sids),
                "closed_before": float(self.closed_before)}

    @classmethod
    def from_state(cls, doc: dict[str, Any], group_names: list[str]) -> FeatureBatch:
        arrays = doc["arrays"]
        users = strings(doc["users"], "batch")
        if not isinstance(arrays, list) or len(arrays) != len(_ARRAYS):
            raise StateError("batch: arrays do not fit")
        k, g = len(users), len(group_names)
        got = {n: unpack(a, dt, [k if d == _K else d for d in shape], "batch")
               for a, (n, dt, shape) in zip(arrays, _ARRAYS, strict=True)}
        eids, sids = strings(doc["eids"], "batch"), sids_in(doc["sids"], "batch")
        ends, starts = got["eid_ends"], got["eid_starts"]
        if len(sids) != len(eids) or (k and (starts.min() < 0 or (ends < starts).any()
                                             or ends.max() > len(eids))) or (
                k and (got["gids"].min() < 0 or got["gids"].max() >= len(got["quantiles"])
                       or len(got["quantiles"]) > g)):
            raise StateError("batch: event ids or peer groups do not fit")
        return cls(got["buckets"], users, got["gids"], group_names, got["raw"], got["t_last"],
                   got["warm"], got["own_mean"], got["own_var"], got["quantiles"], eids, ends,
                   starts, got["accounts"], number(doc["closed_before"], "batch"), sids,
                   got["counts"])

    def select(self, which: np.ndarray) -> FeatureBatch:
        """The rows of a boolean mask, or at the given positions (in that order)."""
        idx = np.flatnonzero(which) if which.dtype == bool else which
        pick = idx.tolist()
        spans = [(max(int(self.eid_starts[i]), int(self.eid_ends[i]) - EIDS_KEPT),
                  int(self.eid_ends[i])) for i in pick]
        ids = [self.eids[a:b] for a, b in spans]
        ends = np.cumsum([len(e) for e in ids], dtype=np.int64)
        return FeatureBatch(
            self.buckets[idx], [self.users[i] for i in pick], self.gids[idx],
            self.group_names, self.raw[idx], self.t_last[idx], self.warm[idx],
            self.own_mean[idx], self.own_var[idx], self.quantiles,
            [e for e_ids in ids for e in e_ids], ends, ends - [len(e) for e in ids],
            self.accounts[idx], self.closed_before,
            [s for a, b in spans for s in self.sids[a:b]], self.counts[idx])


# the arrays of :meth:`FeatureBatch.state`: (name, dtype, shape: _K its rows, None any)
_K = -1
_ARRAYS: tuple[tuple[str, type, tuple[int | None, ...]], ...] = (
    ("buckets", np.int64, (_K,)), ("gids", np.int64, (_K,)),
    ("raw", np.float64, (_K, NW)), ("t_last", np.float64, (_K,)), ("warm", np.bool_, (_K,)),
    ("own_mean", np.float32, (_K, NW)), ("own_var", np.float32, (_K, NW)),
    ("quantiles", np.float64, (None, 3, NW)), ("eid_ends", np.int64, (_K,)),
    ("eid_starts", np.int64, (_K,)), ("accounts", np.int64, (_K,)),
    ("counts", np.float64, (_K, 3)))


def model_inputs(raw: np.ndarray, own_mean: np.ndarray, own_var: np.ndarray,
                 peer_q: np.ndarray, cold: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the model's input (float32), rel_self, rel_peer) of window values ``raw`` against
    the account's own baseline and its peers' quantiles (row by row, for any rows). A
    ``cold`` row (an account tracked for less than the warm-up) is compared with its peers
    only, and what it never did before counts for nothing (everything is new to a new hire)."""
    p50, p99 = peer_q[:, 1], peer_q[:, 2]
    # beyond one standard deviation above the account's usual (most hours are within it)
    x_self = np.maximum((raw - own_mean) / np.sqrt(own_var + _FLOOR_VAR) - 1.0, 0.0)
    x_peer = np.maximum(raw - p99, 0.0) / (p99 - p50 + FLOOR)
    if cold is not None and cold.any():
        x_self[cold] = 0.0
        x_peer[np.ix_(np.flatnonzero(cold), NOVELTY_COLS)] = 0.0
    x = np.empty((len(raw), len(FEATURE_NAMES)), np.float32)
    x[:, _M_PEER_J] = x_peer[:, _M_PEER_W]
    x[:, _M_SELF_J] = x_self[:, _M_SELF_W]
    return x, x_self, x_peer


def tail_inputs(raw: np.ndarray, own_mean: np.ndarray, own_var: np.ndarray,
                peer_q: np.ndarray, cold: np.ndarray, p99_at: int = 2,
                levels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row: how far (log scale) its most deviant count is above both the top of its own
    usual range and its peers' 99th percentile (a cold row: its peers' only; its never-before
    counts left out), in units of each count's level if given, and which window value that
    is (see :func:`own_baseline.beyond`)."""
    return largest(tail_excess(raw, own_mean, own_var, peer_q, cold, p99_at), levels)


def tail_excess(raw: np.ndarray, own_mean: np.ndarray, own_var: np.ndarray,
                peer_q: np.ndarray, cold: np.ndarray, p99_at: int = 2) -> np.ndarray:
    """(k, len(TAIL_COLS)): :func:`own_baseline.excess` of every count the tail reads."""
    if cold.any():
        raw = raw.copy()
        raw[np.ix_(np.flatnonzero(cold), NOVELTY_COLS)] = 0.0
    return excess(raw, own_mean, own_var, peer_q[:, p99_at], cold)
