"""Per-account behaviour over sliding windows of event time (1 hour, 24 hours, 7 days).

Pure: no I/O, no clock, no asyncio. Events go in in event-time order (:meth:`Featurizer.observe`);
every 10 minutes of event time the buckets of the accounts that were active in them are
*committed*, and one feature vector per such account comes out (:class:`FeatureBatch`), as of
the end of that bucket: the account's last hour, 24 hours and 7 days, relative to its own history
and to its peers.

Cost: per list of events, what the features need of them is taken apart into columns while they
are in the caches (:class:`~watchdog.anomaly.intake.Kept`); every few thousand events (and at
the end of each hour) those are reduced to one row per account and bucket (``reduction``);
at the end of each hour of event time its rows are committed together, with a number of numpy
operations that does not depend on the number of accounts (:meth:`Featurizer._commit`).
Memory: one row of a few fixed-size arrays per tracked account (:mod:`~watchdog.anomaly.layout`;
they grow in place by 1/64) plus its dictionary entry; accounts idle for ``idle_ttl`` are evicted
and their rows reused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from watchdog.anomaly import own_baseline
from watchdog.anomaly.batch import FeatureBatch
from watchdog.anomaly.featurizer_state import SavedFeaturizer
from watchdog.anomaly.intake import ROW, Kept, T
from watchdog.anomaly.layout import fresh_row, grow_rows, stamps, sweep
from watchdog.anomaly.peer_groups import DirectoryGroups
from watchdog.anomaly.peers import PeerBaselines
from watchdog.anomaly.reduction import Rows, by_rank, merge, reduce_events
from watchdog.anomaly.ring_kernel import advance_and_read
from watchdog.anomaly.vocabulary import BUCKET, LOGGED, NW, PEER_SCALE, PER_HOUR
from watchdog.events import AccessEvent
from watchdog.policy.model import Policy

SEGMENT = 8192  # events kept before they are reduced to rows (bounds the memory they hold)
_SWEEP_EVERY = 16_384  # buckets (~57 days) between sweeps that keep stamps from wrapping
_NO_BUCKET = -(2**62)
_SHARES = np.flatnonzero(~LOGGED)  # the window values not on the log scale


class _HasPolicy(Protocol):
    @property
    def policy(self) -> Policy: ...


class Featurizer(SavedFeaturizer):
    """Sliding-window features per account; see the module docstring.

    :meth:`observe_many` takes its events apart (:meth:`_take_apart`); what is kept is reduced
    a few thousand events at a time (:meth:`_absorb`) and committed an hour at a time.
    ``policy_source``: an object whose ``policy`` attribute is the current policy (the
    engine), read where the policy matters, so that a reloaded policy applies at once.
    """

    # the row arrays (see _alloc)
    u16: np.ndarray
    f32: np.ndarray
    seen: np.ndarray
    own_mean: np.ndarray
    own_var: np.ndarray
    meta: np.ndarray
    first_seen: np.ndarray
    last_seen: np.ndarray
    group_span: np.ndarray

    def __init__(
        self,
        policy: Policy,
        group_of: Callable[[str, float], str],
        *,
        peers: PeerBaselines | None = None,
        warmup: float = 25 * 3600.0,
        idle_ttl: float = 14 * 86400.0,
        capacity: int = 1024,
        policy_source: _HasPolicy | None = None,
    ) -> None:
        # (a field added here is saved by featurizer_state.py: add it there too)
        self._policy = policy
        self._policy_source = policy_source
        self.group_of = group_of
        # groups from the directory say how long they hold: looked up again only then
        self._groups = group_of if isinstance(group_of, DirectoryGroups) else None
        self.peers = peers if peers is not None else PeerBaselines(NW, BUCKET, PEER_SCALE)
        self.warmup = warmup
        self.idle_ttl = idle_ttl
        self.rows: dict[str, int] = {}  # user id -> row
        # told each account that gets a row (the anomaly service's held rule alerts)
        self.on_new_account: Callable[[str], None] | None = None
        self._row_user: list[str | None] = []  # row -> user id (None: free)
        self._free: list[int] = []
        self._cap = 0
        self._alloc(capacity)
        self._bucket = _NO_BUCKET  # the open bucket (none before the first event)
        self._end: float = -math.inf  # event time at which the open bucket closes
        # events not reduced to rows yet: taken apart (at the end of each call), then these
        self._kept = Kept(policy, self.rows)
        self._buf: list[tuple[AccessEvent, float]] = []
        self._runs: list[tuple[int, int]] = [(0, _NO_BUCKET)]  # (from position, bucket) in it
        self._parts: list[Rows] = []  # this hour's rows not committed yet
        self._committed_open = _NO_BUCKET  # the open bucket at the last commit
        self._last_sweep = 0
        self._last_evict_hour = 0
        self.evicted = 0

    @property
    def policy(self) -> Policy:
        return self._policy if self._policy_source is None else self._policy_source.policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = policy

    # -- storage: one row of each array per account (a commit gathers and scatters each once)
    def _alloc(self, cap: int) -> None:
        old = self._cap
        grow_rows(self, old, cap)
        self._free.extend(range(cap - 1, old - 1, -1))
        self._row_user.extend([None] * (cap - old))
        self._cap = cap

    def _new_row(self, uid: str, t: float) -> int:
        if not self._free:
            self._alloc(self._cap + max(1024, self._cap // 64))  # slack: at most 1/64
        r = self._free.pop()
        self.rows[uid] = r
        self._row_user[r] = uid
        bucket = int(t // BUCKET)
        u = self.u16[r]
        u[:] = 0
        fresh_row(u, bucket)
        self.f32[r] = 0
        self.seen[r] = 0
        # a new account starts from its peers' baseline, not from zero
        gid = self.peers.gid(self.group_of(uid, t))
        mean, var = self.peers.moments(gid)
        self.own_mean[r] = mean
        self.own_var[r] = np.minimum(var, 6e4)
        self.meta[r] = (0, gid, bucket // PER_HOUR)
        self.first_seen[r] = t
        self.last_seen[r] = t
        self.group_span[r] = np.nan  # the next hour looks its group up
        if self.on_new_account is not None:
            self.on_new_account(uid)
        return r

    def tracked(self) -> int:
        return len(self.rows)

    # -- per event ----------------------------------------------------------------------
    def observe(self, ev: AccessEvent, t: float) -> FeatureBatch | None:
        """Account for one event; returns the vectors of the hour it closed, if any.

        An event older than the open bucket (late, out of order) joins the open bucket.
        """
        if self._policy_source is not None and self._policy_source.policy is not self._policy:
            self._new_policy()
        out = self._advance(t) if t >= self._end else None
        buf = self._buf
        buf.append((ev, t))
        if len(buf) >= 64:
            self._take_apart()
            if len(self._kept) >= SEGMENT:
                self._absorb()
        return out

    def observe_many(self, items: Sequence[tuple[AccessEvent, float]]) -> list[FeatureBatch]:
        """:meth:`observe` of each (event, event time) in turn; the vectors of the hours they
        closed."""
        out: list[FeatureBatch] = []
        if not items:
            return out
        if self._policy_source is not None and self._policy_source.policy is not self._policy:
            self._new_policy()
        # a plain loop: the daemon's lists are often a few events long
        buf = self._buf
        end = self._end
        start = 0
        for i, (_, t) in enumerate(items):
            if t >= end:  # closes the open bucket (or is the first event)
                buf.extend(items[start:i])
                start = i
                batch = self._advance(t)
                if batch is not None:
                    out.append(batch)
                buf = self._buf  # a commit starts a new list
                end = self._end
        buf.extend(items[start:])
        self._take_apart()
        if len(self._kept) >= SEGMENT:
            self._absorb()
        return out

    def _advance(self, t: float) -> FeatureBatch | None:
        """Event time reached the end of the open bucket (or this is the first event).

        The closed buckets of an hour are committed together when it ends (or when
        :meth:`commit` is called), in one vectorised pass.
        """
        b = int(t // BUCKET)
        out = None
        cur_b = self._bucket
        if cur_b == _NO_BUCKET:
            self._last_sweep = b
            self._last_evict_hour = b // PER_HOUR
            self.peers.rebase(b)
        if b > cur_b:
            self._bucket = b
            self._runs.append((len(self._kept) + len(self._buf), b))
            if cur_b != _NO_BUCKET and b // PER_HOUR != cur_b // PER_HOUR:
                out = self._commit(self._closed_rows())
                self._housekeeping(b, t)
        # floats: comparing a float with a large int is several times slower
        self._end = float((self._bucket + 1) * BUCKET)
        return out

    def _new_policy(self) -> None:
        """The policy was reloaded: the events kept so far are judged by the old one."""
        self._absorb()
        assert self._policy_source is not None
        self._policy = self._policy_source.policy

    @property
    def open_bucket(self) -> int | None:
        """The bucket events currently go to (None before the first event)."""
        return None if self._bucket == _NO_BUCKET else self._bucket

    def commit(self) -> FeatureBatch | None:
        """Commit the closed buckets not committed yet (the open one stays open). Nothing to
        do while the open bucket is the one of the last commit (the daemon asks every tick)."""
        if self._bucket == self._committed_open:
            return None
        return self._commit(self._closed_rows())

    def flush(self) -> FeatureBatch | None:
        """Commit the closed buckets and the open one now (end of input); later events may
        still join the open bucket."""
        rows = self._rows()
        self._parts = []
        self._committed_open = self._bucket
        return self._commit(rows, math.inf)

    # -- events -> rows: column by column ------------------------------------------------
    def _take_apart(self) -> None:
        """What the features need of the events not taken apart yet (while they are in the
        caches: the events themselves are not kept)."""
        if self._buf:
            self._kept.policy = self._policy
            self._kept.add(self._buf)
            self._buf = []

    def _absorb(self) -> None:
        """Reduce the kept events to rows (one per account and bucket)."""
        self._take_apart()
        kept = self._kept
        if not len(kept):
            return
        runs = self._runs
        self._kept, self._runs = kept.fresh(), [(0, self._bucket)]
        # accounts: a new one gets its row at its first event
        nums = kept.numbers()
        rows = nums[:, ROW].astype(np.int64)
        missing = np.flatnonzero(rows < 0).tolist()
        if missing:
            uids = kept.uids()
            get_row = self.rows.get
            for i in missing:
                r = get_row(uids[i])
                rows[i] = self._new_row(uids[i], float(nums[i, T])) if r is None else r
        self._parts.append(reduce_events(kept, nums, runs, rows, self._policy))

    def _rows(self) -> Rows | None:
        """Every uncommitted row of the hour, one per account and bucket, sorted."""
        self._absorb()
        return merge(self._parts) if self._parts else None

    def _closed_rows(self) -> Rows | None:
        """The uncommitted rows of closed buckets; the open bucket's stay for later."""
        rows = self._rows()
        self._parts = []
        self._committed_open = self._bucket
        if rows is None:
            return None
        closed, still_open = rows.split(self._bucket)
        self._parts = [] if still_open is None else [still_open]
        return closed

    # -- commit: one vectorised pass per hour -------------------------------------------
    def _commit(self, part: Rows | None, closed_before: float | None = None,
                ) -> FeatureBatch | None:
        """Commit rows of one hour (sorted by account, then bucket): one vector each.

        An account active in several buckets has a row per bucket; its *rank* counts its
        earlier ones. Rows go rank by rank (rank 0: every account; rank 1: those with a second
        bucket; ...), each rank's rows starting from the state its previous rank left, so the
        result is exactly that of committing bucket by bucket; only the state updates loop
        over ranks (at most six), on contiguous blocks, and all else is one pass over all rows.
        Within one hour the peers' baselines do not move (they fold in once an hour), and
        every earlier row of the account is inside both windows of a later one.
        """
        if part is None or not len(part):
            return None
        rm, _, _, offs, acct = by_rank(part.rows)
        rows = part.rows[rm]
        bks = part.bks[rm]
        t_last = part.t_last[rm]
        cats = part.cats[rm]
        bloom = part.bloom[rm]
        eid_ends = np.cumsum(part.eid_n)
        eid_starts = (eid_ends - part.eid_n)[rm]
        eid_ends = eid_ends[rm]
        row_user = self._row_user
        users: list[str] = [row_user[r] for r in rows.tolist()]  # rows in use: not None

        ur = rows[: offs[1]]  # rank 0: every account once, in order
        h = int(bks[0]) // PER_HOUR
        now, ring_cols = stamps(bks)

        # peer groups: looked up again once per account and hour of event time
        meta = self.meta[ur]
        stale = np.flatnonzero(meta[:, 2] != h)
        if len(stale):
            self._regroup(meta, stale, ur, users, t_last)
            meta[stale, 2] = h
        gids = meta[acct, 1].astype(np.int64)

        # each row's bucket added to its account's state (rings, sketch stamps, never-before
        # bits; in place, row after row: rank by rank) and its windows read as of the end of
        # its bucket; the peers' rare categories: what they hardly touch (this hour)
        x_win = np.empty((len(rows), NW))
        advance_and_read(self.u16, self.f32, self.seen, rows, part.small[rm],
                         part.large[rm], bloom, cats, part.subj[rm], now, ring_cols,
                         self.peers.rare_categories(gids), x_win)
        # log1p in place over the whole array, the shares put back: half the time of
        # gathering the logged columns and scattering them back (the same values)
        shares = x_win[:, _SHARES]
        np.log1p(x_win, out=x_win)
        x_win[:, _SHARES] = shares

        # learn: the own baseline (not from what is far beyond it and the peers)
        quantiles = self.peers.quantile_table()  # the peers' baselines before this hour
        age = (bks + 1) * BUCKET - self.first_seen[rows]
        self.meta[ur] = meta  # peer groups looked up again; the counts are learn's
        own_m, own_v, usual = own_baseline.learn(
            self.own_mean, self.own_var, self.meta, x_win, rows,
            quantiles[:, 2], gids, age)
        self.peers.add(gids, x_win, cats, only=usual)
        latest = np.full(len(ur), -np.inf)
        np.maximum.at(latest, acct, t_last)
        self.last_seen[ur] = np.maximum(self.last_seen[ur], latest)
        warm = age >= self.warmup
        return FeatureBatch(bks, users, gids, self.peers.names, x_win,
                            t_last, warm, own_m, own_v, quantiles, part.eids, eid_ends,
                            eid_starts, rows,
                            self._bucket if closed_before is None else closed_before,
                            part.sids, np.column_stack((part.small[rm, :2], part.large[rm, 2])))

    def _regroup(self, meta: np.ndarray, stale: np.ndarray, ur: np.ndarray, users: list[str],
                 t_last: np.ndarray) -> None:
        """Peer groups (into ``meta``) of the accounts ``stale`` (rank-0 rows, not looked up
        this hour) as of their first row's time."""
        if self._groups is not None:  # only those whose time left their group's span
            self._groups.regroup(meta, stale, ur, users, t_last, self.group_span, self.peers.gid)
            return
        group_of, gid_of = self.group_of, self.peers.gid
        meta[stale, 1] = [gid_of(group_of(users[j], float(t_last[j]))) for j in stale.tolist()]

    # -- housekeeping -------------------------------------------------------------------
    def _housekeeping(self, b: int, t: float) -> None:
        """A new hour of event time (nothing stashed): the peers' baselines move, idle
        accounts go, and now and then stale stamps are swept."""
        hour = b // PER_HOUR
        if hour != self._last_evict_hour:
            self._last_evict_hour = hour
            self.peers.refresh(b)
            self.evict(t - self.idle_ttl)
        if b - self._last_sweep >= _SWEEP_EVERY:
            self._last_sweep = b
            sweep(self.u16, b)  # re-stamp stale slots before their age wraps

    def evict(self, before: float) -> int:
        """Forget accounts whose last event is before ``before``; returns how many."""
        if not self.rows:
            return 0
        dropped = 0
        row_user = self._row_user
        busy = ({r for p in self._parts for r in p.rows.tolist()}
                | {self.rows.get(u, -1) for u in self._kept.uids()}
                | {self.rows.get(e.user.id, -1) for e, _ in self._buf})
        for r in np.flatnonzero(self.last_seen[: self._cap] < before).tolist():
            u = row_user[r]
            if u is None or r in busy:
                continue
            del self.rows[u]
            row_user[r] = None
            self.last_seen[r] = np.inf  # free rows are never idle
            self._free.append(r)
            dropped += 1
        self.evicted += dropped
        return dropped
