"""The reduction: kept events to one row per account and bucket (:class:`Rows`), column by
column (taken apart as they come, :mod:`~watchdog.anomaly.intake`, then grouped in one
compiled pass: :mod:`~watchdog.anomaly.group_kernel`), a few thousand events at a time
(:func:`reduce_events`); rows of the same account and bucket reduced in
several parts are added up in order (:func:`merge`). Pure: no state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from watchdog.anomaly.batch import EIDS_KEPT, Sids
from watchdog.anomaly.group_kernel import reduce_groups
from watchdog.anomaly.intake import (
    CATS,
    COUNTS,
    EID,
    FLAGS,
    OBJS,
    RECORDS,
    RES,
    SIDS,
    SRC,
    SUBJ,
    Kept,
    T,
)
from watchdog.anomaly.layout import NL, NS, SEEN_WORDS
from watchdog.anomaly.stage_state import StateError, pack, sids_in, sids_out, strings, unpack
from watchdog.policy.model import Policy


class Rows:
    """Events reduced to one row per account and bucket (the uncommitted part of the open
    hour), sorted by (account row, bucket); the small counters' never-before columns are
    filled in at the commit."""

    __slots__ = ("bks", "bloom", "cats", "eid_n", "eids", "large", "rows", "sids", "small",
                 "subj", "t_last")

    def __init__(self, rows: np.ndarray, bks: np.ndarray, small: np.ndarray,
                 large: np.ndarray, cats: np.ndarray, subj: np.ndarray, bloom: np.ndarray,
                 t_last: np.ndarray, eids: list[str], eid_n: np.ndarray,
                 sids: list[Sids]) -> None:
        self.rows = rows  # (g,) the accounts' rows
        self.bks = bks  # (g,) buckets
        self.small = small  # (g, NS) int64
        self.large = large  # (g, NL) float64
        self.cats = cats  # (g,) int64 category bits
        self.subj = subj  # (g,) uint64 subject sketch slot bits
        self.bloom = bloom  # (g, SEEN_WORDS) "<u8": resource bits, then source bits
        self.t_last = t_last  # (g,) the last event time
        self.eids = eids  # the last event ids of each row, row after row
        self.eid_n = eid_n  # (g,) how many each
        self.sids = sids  # the subject ids of those events (raw: pseudonymised in alerts)

    def __len__(self) -> int:
        return len(self.rows)

    def split(self, bucket: int) -> tuple[Rows | None, Rows | None]:
        """(the rows of buckets before ``bucket``, the others): None for none."""
        still = self.bks >= bucket
        if still.all():
            return None, self
        if not still.any():
            return self, None
        return self.take(np.flatnonzero(~still)), self.take(np.flatnonzero(still))

    def state(self) -> dict[str, Any]:
        """As plain data (watchdog.anomaly.stage_state)."""
        return {"arrays": [pack(getattr(self, n)) for n, _, _ in _ARRAYS],
                "eids": self.eids, "sids": sids_out(self.sids)}

    @classmethod
    def from_state(cls, doc: dict[str, Any]) -> Rows:
        arrays = doc["arrays"]
        if not isinstance(arrays, list) or len(arrays) != len(_ARRAYS):
            raise StateError("rows: arrays do not fit")
        g = unpack(arrays[0], np.int64, (None,), "rows")
        got = [unpack(a, dt, (len(g), *tail), "rows")
               for a, (_, dt, tail) in zip(arrays, _ARRAYS, strict=True)]
        eids, sids = strings(doc["eids"], "rows"), sids_in(doc["sids"], "rows")
        eid_n = got[-1]
        if len(eids) != int(eid_n.sum()) or len(sids) != len(eids) or (eid_n < 0).any():
            raise StateError("rows: event ids do not fit")
        rows, bks, small, large, cats, subj, bloom, t_last, _ = got
        return cls(rows, bks, small, large, cats, subj, bloom, t_last, eids, eid_n, sids)

    def take(self, idx: np.ndarray) -> Rows:
        ends = np.cumsum(self.eid_n)
        pos, n = ranges(ends[idx] - self.eid_n[idx], self.eid_n[idx])
        eids, sids, at = self.eids, self.sids, pos.tolist()
        return Rows(self.rows[idx], self.bks[idx], self.small[idx], self.large[idx],
                     self.cats[idx], self.subj[idx], self.bloom[idx], self.t_last[idx],
                     [eids[i] for i in at], n, [sids[i] for i in at])


# the arrays of :meth:`Rows.state`, in order: (name, dtype, shape after the row axis)
_ARRAYS: tuple[tuple[str, type, tuple[int, ...]], ...] = (
    ("rows", np.int64, ()), ("bks", np.int64, ()), ("small", np.int64, (NS,)),
    ("large", np.float64, (NL,)), ("cats", np.int64, ()), ("subj", np.uint64, ()),
    ("bloom", np.uint64, (SEEN_WORDS,)), ("t_last", np.float64, ()), ("eid_n", np.int64, ()))


def ranges(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions of consecutive ranges (``starts``, ``sizes``), one after the other."""
    total = int(sizes.sum())
    ends = np.cumsum(sizes)
    return np.arange(total) - np.repeat(ends - sizes - starts, sizes), sizes


def heads(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal values starts in sorted ``keys`` (non-empty)."""
    new = np.empty(len(keys), bool)
    new[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    return np.flatnonzero(new)


def stable_order(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` of non-negative integer keys in the narrowest type
    they fit (a stable order is unique): 16 bits numpy sorts by radix (about 1/4 the time),
    32 bits as fast as ``lexsort`` of the two keys a combined one stands for (int64: 15-20%
    slower, measured on 90k-900k keys)."""
    top = int(key.max()) if len(key) else 0
    narrow = np.uint16 if top < 1 << 16 else np.uint32 if top < 1 << 32 else None
    return np.argsort(key if narrow is None else key.astype(narrow), kind="stable")


def by_account_and_bucket(rows: np.ndarray, bks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stable order that groups items by (account row, bucket) (the buckets of one hour),
    and where each group starts in it."""
    key = rows * 8 + (bks - bks.min())  # an hour: at most 6 buckets
    order = stable_order(key)
    return order, heads(key[order])


def tails(sizes: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Of consecutive groups of ``sizes`` items: the positions of each group's last ``keep``
    items, and how many that is per group."""
    n = np.minimum(sizes, keep)
    return ranges(np.cumsum(sizes) - n, n)



def reduce_events(kept: Kept, nums: np.ndarray, runs: list[tuple[int, int]], rows: np.ndarray,
                  policy: Policy) -> Rows:
    """Kept events to rows, one per account and bucket: ``nums`` are their
    numbers (:meth:`Kept.numbers`), ``runs`` the (from position, bucket) runs of ``kept``,
    ``rows`` each event's account row; ``policy`` says what business hours are."""
    n = len(kept)
    starts = [i for i, _ in runs]
    bks = np.repeat(np.array([b for _, b in runs], np.int64), np.diff([*starts, n]))
    ts = np.ascontiguousarray(nums[:, T])
    objs = kept.objs
    off = np.zeros(n, bool)  # off business hours
    hours = policy.business_hours
    if hours is not None:  # looked up once per minute
        mins = ts // 60
        if (mins[1:] >= mins[:-1]).all():  # in time order (the usual case): no sort
            first = heads(mins)
            off = np.repeat(np.array([not hours.contains(t) for t in ts[first].tolist()], bool),
                            np.diff(np.append(first, n)))
        else:
            _, first, where = np.unique(mins, return_index=True, return_inverse=True)
            off = np.array([not hours.contains(t) for t in ts[first].tolist()], bool)[where]

    # group by (account, bucket), events in order within a group: one compiled pass
    order, group_at = by_account_and_bucket(rows, bks)
    g = len(group_at)
    small = np.zeros((g, NS), np.int64)
    large = np.zeros((g, NL))
    cats = np.zeros(g, np.int64)
    subj = np.zeros(g, np.uint64)
    bloom = np.zeros((g, SEEN_WORDS), np.uint64)
    t_last = np.empty(g)
    # (the numbers are exact in float64: flags, bits and category bits are small ints;
    # records, bytes and subjects were converted to float64 one by one before too)
    ints = nums[:, FLAGS:CATS + 1].astype(np.int64).T.copy()  # flags, src, res, cats
    floats = nums[:, RECORDS:COUNTS + 1].T.copy()  # records, bytes, subjects
    reduce_groups(order, group_at, ints[0], off, ints[RES - FLAGS], ints[SRC - FLAGS],
                  ints[CATS - FLAGS], np.array(objs[SUBJ::OBJS], np.uint64), floats[0],
                  floats[1], floats[2], ts, small, large, cats, subj, bloom, t_last)
    sizes = np.diff(np.append(group_at, n))
    pos, eid_n = tails(sizes, EIDS_KEPT)
    # the cited events' ids, from the columns sliced out at C speed: half the time of
    # indexing ``objs`` at ``i * OBJS + EID`` in Python
    at, eids, sids = order[pos].tolist(), objs[EID::OBJS], objs[SIDS::OBJS]
    return Rows(rows[order[group_at]], bks[order[group_at]], small, large, cats, subj, bloom,
                t_last, [eids[i] for i in at], eid_n, [sids[i] for i in at])


def merge(parts: list[Rows]) -> Rows:
    """Rows reduced in several parts as one, sorted (the same account and bucket in several
    parts: added up, in order)."""
    if len(parts) == 1:
        return parts[0]
    rows = np.concatenate([p.rows for p in parts])
    bks = np.concatenate([p.bks for p in parts])
    order, heads = by_account_and_bucket(rows, bks)
    eid_n = np.concatenate([p.eid_n for p in parts])
    eids = [e for p in parts for e in p.eids]
    sids = [e for p in parts for e in p.sids]
    # each group's event ids: its members' in order, then the last EIDS_KEPT
    member_pos, _ = ranges((np.cumsum(eid_n) - eid_n)[order], eid_n[order])
    pos, n = tails(np.add.reduceat(eid_n[order], heads), EIDS_KEPT)
    at = member_pos[pos].tolist()
    return Rows(
        rows[order[heads]], bks[order[heads]],
        np.add.reduceat(np.concatenate([p.small for p in parts])[order], heads),
        np.add.reduceat(np.concatenate([p.large for p in parts])[order], heads),
        np.bitwise_or.reduceat(np.concatenate([p.cats for p in parts])[order], heads),
        np.bitwise_or.reduceat(np.concatenate([p.subj for p in parts])[order], heads),
        np.bitwise_or.reduceat(np.concatenate([p.bloom for p in parts])[order], heads),
        np.maximum.reduceat(np.concatenate([p.t_last for p in parts])[order], heads),
        [eids[i] for i in at], n, [sids[i] for i in at])


class Ranks(NamedTuple):
    """Rows sorted by account then bucket (*account-major*), reordered rank by rank (rank 0:
    every account's first row; rank 1: the second rows of those with one; ...), accounts in
    order within a rank (*rank-major*)."""

    rm: np.ndarray  # rank-major position -> account-major position
    prev: np.ndarray  # each row's previous row of its account (rank > 0 rows only)
    lasts: np.ndarray  # each account's last row
    offs: np.ndarray  # rank r is offs[r]:offs[r + 1]
    acct: np.ndarray  # each row's account (0, 1, ... in account-major order)


def by_rank(rows_am: np.ndarray) -> Ranks:
    """The rank-major order of account-major rows ``rows_am`` (non-empty)."""
    k = len(rows_am)
    starts = heads(rows_am)  # each account's first row
    acct_am = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, k)))
    rank_am = np.arange(k) - starts[acct_am]
    # ... then rank by rank, accounts in order within a rank (rank-major position ->
    # account-major position): lexsort((acct_am, rank_am))'s order, as one key (unique pairs)
    rm = stable_order(rank_am * len(starts) + acct_am)
    to_rm = np.empty(k, np.int64)
    to_rm[rm] = np.arange(k)
    prev = to_rm[rm - 1]  # each row's previous row of its account (rank > 0 rows only)
    lasts = to_rm[np.append(starts[1:], k) - 1]  # each account's last row
    offs = np.concatenate(([0], np.cumsum(np.bincount(rank_am))))
    return Ranks(rm, prev, lasts, offs, acct_am[rm])
