"""The reduction: kept events to one row per account and bucket (:class:`Rows`), column by
column (taken apart per list as it comes, then grouped in one compiled pass:
:mod:`~watchdog.anomaly.group_kernel`), a few thousand events at a time
(:func:`reduce_events`); rows of the same account and bucket reduced in
several parts are added up in order (:func:`merge`). Pure: no state but string caches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple
from zlib import crc32

import numpy as np
from msgspec import UNSET, UnsetType

from watchdog.anomaly.batch import EIDS_KEPT, Sids
from watchdog.anomaly.group_kernel import reduce_groups
from watchdog.anomaly.layout import M_SUBJ, NL, NS, SEEN_RES_BITS, SEEN_SRC_BITS, SEEN_WORDS
from watchdog.anomaly.vocabulary import CATEGORIES, EXPORT_ACTIONS
from watchdog.events import AccessEvent
from watchdog.policy.model import Policy

MAX_IDS_PER_EVENT = 256  # subject ids hashed per event; the rest count as anonymous
_EXTERNAL_KINDS = frozenset({"external_media", "third_party", "cloud_storage"})
_CAT_BIT = {c: 1 << i for i, c in enumerate(CATEGORIES)}

# distinct pseudo-random slots for subjects counted without ids (by a hash of the event id)
_PSEUDO = tuple(tuple((h + 37 * i) & (M_SUBJ - 1) for i in range(M_SUBJ)) for h in range(M_SUBJ))
# ... as slot masks: _PSEUDO_MASK[h][k] has the first k of _PSEUDO[h]
_PSEUDO_MASK = tuple(
    tuple(sum(1 << s for s in set(slots[:k])) for k in range(M_SUBJ + 1)) for slots in _PSEUDO)
_CAT_MASKS: dict[tuple[str, ...], int] = {(): 0}  # categories of an event -> bit mask
# what an action counts as: 1 an export, 2 a login (failed ones count), else nothing
_ACTION_KIND = {**dict.fromkeys(EXPORT_ACTIONS, 1), "login": 2}


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

    def take(self, idx: np.ndarray) -> Rows:
        ends = np.cumsum(self.eid_n)
        pos, n = ranges(ends[idx] - self.eid_n[idx], self.eid_n[idx])
        eids, sids, at = self.eids, self.sids, pos.tolist()
        return Rows(self.rows[idx], self.bks[idx], self.small[idx], self.large[idx],
                     self.cats[idx], self.subj[idx], self.bloom[idx], self.t_last[idx],
                     [eids[i] for i in at], n, [sids[i] for i in at])


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


def by_account_and_bucket(rows: np.ndarray, bks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stable order that groups items by (account row, bucket) (the buckets of one hour),
    and where each group starts in it."""
    key = rows * 8 + (bks - bks.min())  # an hour: at most 6 buckets
    order = np.argsort(key, kind="stable")
    return order, heads(key[order])


def tails(sizes: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Of consecutive groups of ``sizes`` items: the positions of each group's last ``keep``
    items, and how many that is per group."""
    n = np.minimum(sizes, keep)
    return ranges(np.cumsum(sizes) - n, n)



def _h(s: str) -> int:
    return crc32(s.encode())



def _external(policy: Policy, kind: object, domain: object, action: str) -> bool:
    if kind in _EXTERNAL_KINDS:
        return True
    if kind == "email" or action == "email":
        return bool(domain) and not policy.is_internal_domain(str(domain))
    return False


class Kept:
    """What the features need of the events not reduced to rows yet, column by column, taken
    from each list of events as it arrives (:meth:`add`): no event is held until its hour
    ends. (Read an hour later, a few thousand at a time, and freed then, the events had
    left the CPU's caches: both cost about twice as much.)"""

    __slots__ = ("bytes", "cats", "counts", "eids", "flags", "records", "res", "rows", "sids",
                 "src", "subj", "ts", "uids")

    def __init__(self) -> None:
        self.ts: list[float] = []
        self.uids: list[str] = []
        self.rows: list[int] = []  # the account's row (-1: none yet, given at the reduction)
        self.eids: list[str] = []
        self.flags: list[int] = []  # 1 an export, 2 a failed login, 4 sent outside
        self.src: list[int] = []  # the source address's never-before bit (-1: none)
        self.res: list[int] = []  # the resource's
        self.cats: list[int] = []  # category bits
        self.records: list[int | float] = []
        self.bytes: list[int | float] = []
        self.subj: list[int] = []  # subject sketch slot bits
        self.counts: list[int] = []  # subjects
        self.sids: list[Sids] = []  # raw: pseudonymised in alerts

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, items: Sequence[tuple[AccessEvent, float]], policy: Policy,
            res_bits: dict[str, int], src_bits: dict[str, int],
            row_of: Callable[[str, int], int]) -> None:
        """Take (event, event time)s apart; ``policy`` says what is internal; ``res_bits`` and
        ``src_bits`` cache the never-before bits per string; ``row_of(user, -1)``: the account's
        row or -1."""
        # One loop, each event's objects read once while they are in the caches: a list
        # comprehension per field took 1.9 us per event, this 1.3 (100,000 events of the
        # 2,000-account tuning world, best of 5).
        ts, uids, rows, eids, flags, cats = (self.ts, self.uids, self.rows, self.eids,
                                             self.flags, self.cats)
        records, nbytes, sids, subj, counts = (self.records, self.bytes, self.sids, self.subj,
                                               self.counts)
        srcs: list[str | UnsetType | None] = []
        ress: list[str | UnsetType | None] = []
        kind = _ACTION_KIND.get
        cat_mask = _CAT_MASKS.get
        for ev, t in items:
            ts.append(t)
            uid = ev.user.id
            uids.append(uid)
            rows.append(row_of(uid, -1))
            info = ev.event
            eids.append(info.id)
            action = info.action
            flag = kind(action, 0)
            if flag == 2 and info.outcome != "failure":  # logins: only failed ones count
                flag = 0
            dest = ev.destination
            if dest and _external(policy, dest.kind, dest.domain, action):
                flag |= 4
            flags.append(flag)
            src = ev.source
            srcs.append(src.ip if src else None)
            data = ev.data
            ress.append(data.resource)
            c = data.categories
            m = cat_mask(c, -1)
            cats.append(_cat_mask(c) if m < 0 else m)
            records.append(data.records or 0)
            nbytes.append(data.bytes or 0)
            ids = data.subject_ids
            n = data.subject_count
            if n is UNSET and len(ids) == 1:  # the common case: one id, no count
                sid = ids[0]
                sids.append(sid)  # the string itself: held tuples are what the collector
                subj.append(1 << (crc32(sid.encode()) & (M_SUBJ - 1)))  # traverses
                counts.append(1)
                continue
            sids.append(ids[0] if len(ids) == 1 else ids)
            if n is UNSET:
                n = len(ids)
            counts.append(n)
            subj.append(_slots(ids, info.id, n) if n else 0)
        self.src += _bits(src_bits, srcs, SEEN_SRC_BITS)
        self.res += _bits(res_bits, ress, SEEN_RES_BITS)


def reduce_events(kept: Kept, runs: list[tuple[int, int]], rows_l: list[int], policy: Policy,
                  ) -> Rows:
    """Kept events to rows, one per account and bucket: ``runs`` are the (from position,
    bucket) runs of ``kept``, ``rows_l`` each event's account row; ``policy`` says what
    business hours are."""
    n = len(kept)
    starts = [i for i, _ in runs]
    bks = np.repeat(np.array([b for _, b in runs], np.int64), np.diff([*starts, n]))
    ts = np.array(kept.ts, np.float64)
    eids = kept.eids
    off = np.zeros(n, bool)  # off business hours
    hours = policy.business_hours
    if hours is not None:  # looked up once per minute
        _, first, where = np.unique(ts // 60, return_index=True,
                                    return_inverse=True)
        off = np.array([not hours.contains(t) for t in ts[first].tolist()], bool)[where]

    # group by (account, bucket), events in order within a group: one compiled pass
    rows = np.array(rows_l, np.int64)
    order, heads = by_account_and_bucket(rows, bks)
    g = len(heads)
    small = np.zeros((g, NS), np.int64)
    large = np.zeros((g, NL))
    cats = np.zeros(g, np.int64)
    subj = np.zeros(g, np.uint64)
    bloom = np.zeros((g, SEEN_WORDS), np.uint64)
    t_last = np.empty(g)
    reduce_groups(order, heads, np.array(kept.flags, np.int64), off,
                  np.array(kept.res, np.int64), np.array(kept.src, np.int64),
                  np.array(kept.cats, np.int64), np.array(kept.subj, np.uint64),
                  np.array(kept.records, np.float64), np.array(kept.bytes, np.float64),
                  np.array(kept.counts, np.float64), ts, small, large, cats, subj, bloom,
                  t_last)
    sizes = np.diff(np.append(heads, n))
    pos, eid_n = tails(sizes, EIDS_KEPT)
    at = order[pos].tolist()
    sids = kept.sids
    return Rows(rows[order[heads]], bks[order[heads]], small, large, cats, subj, bloom,
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


def _bits(cache: dict[str, int], keys: Sequence[str | UnsetType | None], bits: int,
          ) -> list[int]:
    """Each key's bit in a ``bits``-wide bitmap (its hash modulo ``bits``; -1 for none),
    cached per string."""
    get = cache.get
    out = [get(k, -2) if k else -1 for k in keys]
    if -2 in out:
        if len(cache) >= 100_000:
            cache.clear()
        for i in [i for i, v in enumerate(out) if v == -2]:
            key = keys[i]
            assert isinstance(key, str)
            out[i] = cache[key] = _h(key) & (bits - 1)
    return out


def _slots(ids: tuple[str, ...], eid: str, n: int) -> int:
    """The subject sketch's slots for an event's ``n`` subjects: by id for the first
    ``MAX_IDS_PER_EVENT`` ids, pseudo-random distinct ones for the rest (by the event id)."""
    m = 0
    for sid in ids if len(ids) <= MAX_IDS_PER_EVENT else ids[:MAX_IDS_PER_EVENT]:
        m |= 1 << (crc32(sid.encode()) & (M_SUBJ - 1))
    extra = n - min(len(ids), MAX_IDS_PER_EVENT)
    if extra > 0:
        m |= _PSEUDO_MASK[_h(eid) & (M_SUBJ - 1)][min(extra, M_SUBJ)]
    return m


def _cat_mask(cats: tuple[str, ...]) -> int:
    mask = 0
    for c in cats:
        mask |= _CAT_BIT.get(c, 0)
    if len(_CAT_MASKS) < 4096:
        _CAT_MASKS[cats] = mask
    return mask



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
    # ... then rank by rank, accounts in order within a rank
    rm = np.lexsort((acct_am, rank_am))  # rank-major position -> account-major position
    to_rm = np.empty(k, np.int64)
    to_rm[rm] = np.arange(k)
    prev = to_rm[rm - 1]  # each row's previous row of its account (rank > 0 rows only)
    lasts = to_rm[np.append(starts[1:], k) - 1]  # each account's last row
    offs = np.concatenate(([0], np.cumsum(np.bincount(rank_am))))
    return Ranks(rm, prev, lasts, offs, acct_am[rm])
