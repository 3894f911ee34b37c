"""The day scale: each account's working days against its own usual day (pure, event time).

A sustained change (a leaver reading 2-3x its usual customers every working day) stays
invisible hour by hour: no hour is far out. Over a day it is plain: the day's total is 2-3x
what the account does on an ordinary day. :class:`DayBaselines` keeps, per account, a few
floats: its usual day (a robust running level of the log of each day's total, per measure)
and today's totals so far, fed with the featurizer's per-bucket counts (events, exports,
subject ids touched). As today's total passes ``start`` (1.5x) times the usual day it gives
**day evidence**, in points: 1 at twice the usual day, ``cap`` at most; the person-level
risk (:mod:`watchdog.anomaly.risk`) adds them up over days with its decay, so two working
days at 2-3x cross its threshold where one busy day does not.

Evidence comes while the day runs (today so far against a whole usual day), so a day that has
already read twice the usual counts before it ends; it only grows within a day (the ledger
gets the increments).

The usual day must not learn the attack: a day is folded in at the account's first bucket of
the next day, and only when it gave less than ``learn_below`` points (and was not a nearly
idle day: a weekend's few events are no usual working day); each step is clipped (a
Huber-type update), so one odd day moves it little. An account's first day (seen part-way
through) is not learnt; evidence starts once ``min_days`` days are learnt. The state lives
in the featurizer's account rows: an account it forgets (idle for two weeks) starts afresh.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import numpy as np

from watchdog.anomaly.day_kernel import accumulate, give
from watchdog.anomaly.reduction import stable_order
from watchdog.anomaly.stage_state import StateError, pack, unpack

DAY = 86400
DAY_STARTS = 4 * 3600  # local time where one day ends and the next begins: the quietest
# per-bucket counts, in this order. The subject ids touched (the featurizer's third count) are
# not scored as they are: one query naming thousands makes them heavy-tailed (18% of clean
# account-days past 1.5x the usual day, against 6% for events). ``subject_reads`` is each
# bucket's subject ids capped at its events (about one customer per event at most): an
# account whose own work has many events without a customer (marketing) reads 2-3x its usual
# customers in only 1.2x-1.6x its usual events
MEASURES = ("events", "exports", "subject_reads")
NM = len(MEASURES)
# what a measure counts, in an analyst's words (the others: watchdog.anomaly.explain.WHAT)
DAY_WORDS = {"subject_reads": "events naming a customer (data subject)"}


@dataclass(frozen=True)
class DayConfig:
    start: float = 1.5  # today / usual day where evidence starts
    cap: float = 3.0  # points at most per account and day
    pseudo: tuple[float, ...] = (5.0, 3.0, 5.0)  # counts added to both sides (small days)
    min_days: int = 4  # learnt days before evidence
    learn_below: float = 0.5  # a day that gave this many points or more is not learnt
    idle_share: float = 1.0 / 3.0  # a day with fewer events than this share: not learnt
    alpha_min: float = 1.0 / 15.0  # the usual day's memory: about 15 learnt days
    clip_sd: float = 2.0  # a learnt day moves the level by at most this many spreads
    spread0: float = 0.3  # a new account's spread (log scale)
    spread_min: float = 0.1

    def points(self, today: np.ndarray, usual_log: np.ndarray) -> np.ndarray:
        """(k, NM) points of today's totals against the usual day (log1p scale)."""
        k = np.asarray(self.pseudo)
        ratio = (today + k) / (np.expm1(usual_log) + k)
        p = np.log(ratio / self.start) / math.log(2.0 / self.start)
        out: np.ndarray = np.clip(p, 0.0, self.cap)
        return out


@dataclass(frozen=True, slots=True)
class DayEvidence:
    """New points of one account on one day, at the end of one bucket."""

    row: int  # the row of the batch handed in
    user: str
    t: float
    points: float  # the increment (today's points so far minus those given before)
    measure: str  # the measure that gave today's points
    today: float  # its total so far
    usual: float  # its usual day


def day_counts(counts: np.ndarray) -> np.ndarray:
    """(k, NM) of the featurizer's (k, 3) per-bucket counts (events, exports, subject ids)."""
    out = np.empty((len(counts), NM), np.float32)
    out[:, :2] = counts[:, :2]
    out[:, 2] = np.minimum(counts[:, 2], counts[:, 0])
    return out


def day_shift(zone: tzinfo | None, t: float) -> int:
    """Seconds to add to event time so that days are cut at 04:00 local time in ``zone``
    (the policy's business hours' time zone; None: 04:00 UTC): a working day in Tokyo
    (08:00-20:00, 23:00-11:00 UTC) is one day, not the end of one UTC day and most of the
    next."""
    offset = 0.0
    if zone is not None:
        delta = datetime.fromtimestamp(t, zone).utcoffset()
        offset = delta.total_seconds() if delta is not None else 0.0
    return int(offset) - DAY_STARTS


def owners(users: Sequence[str]) -> np.ndarray:
    """Each user's owner mark (never 0: a free row): 32 bits of Python's string hash, which
    the featurizer's account ids already carry (a crc32 of each took ~0.2 us an account and
    hour). Marks live in this process only (a saved state marks its rows again where it is
    loaded: :meth:`DayBaselines.state`), so the hash's per-process salt does not matter; a
    clash (2**-32) keeps the last owner's day."""
    h: np.ndarray = np.fromiter(map(hash, users), np.int64, len(users))
    return (h & 0xFFFFFFFF).astype(np.uint32) | np.uint32(1)


class DayBaselines:
    """Per account: the usual day and today's totals (a few floats each), in rows indexed by
    the featurizer's account rows (``FeatureBatch.accounts``): no index of its own. A row the
    featurizer gave to another account (after evicting an idle one) is known by its owner's
    hash and starts afresh."""

    def __init__(self, config: DayConfig | None = None, cap: int = 1024) -> None:
        self.config = config or DayConfig()
        self._alloc(cap)
        # account-days as they end: (user, day) -> points (calibration collects these)
        self.record: dict[tuple[str, int], float] | None = None
        self._names: dict[int, str] = {}  # with ``record``: each row's account

    def _alloc(self, cap: int) -> None:
        self.level = np.zeros((cap, NM), np.float32)  # usual day, log1p of totals
        self.spread = np.zeros((cap, NM), np.float32)
        self.today = np.zeros((cap, NM), np.float32)
        self.given = np.zeros(cap, np.float32)  # today's points so far
        self.learnt = np.zeros(cap, np.uint16)  # days learnt
        self.day = np.zeros(cap, np.int32)
        self.owner = np.zeros(cap, np.uint32)  # the account's id's owners() mark; 0: free

    def _arrays(self) -> list[np.ndarray]:
        return [self.level, self.spread, self.today, self.given, self.learnt, self.day,
                self.owner]

    def tracked(self) -> int:
        return int(np.count_nonzero(self.owner))

    def _rows(self, users: Sequence[str], slots: np.ndarray, days: np.ndarray) -> None:
        """Make room for ``slots`` and start those of new owners (an account's rows share its
        slot: its owner is marked once; a new one starts on the day of its last row)."""
        top = int(slots.max()) + 1
        if top > len(self.day):
            old = self._arrays()
            self._alloc(max(top, len(self.day) + len(self.day) // 4))
            for new, o in zip(self._arrays(), old, strict=True):
                new[:len(o)] = o
        marks = owners(users)
        if (self.owner[slots] != marks).any():  # (most commits: no new owner, no sort)
            uniq, back = np.unique(slots[::-1], return_index=True)
            last = len(slots) - 1 - back  # each slot's last row
            self._start(uniq, marks[last], days[last])
        if self.record is not None:
            self._names.update(zip(slots.tolist(), users, strict=True))

    def _start(self, uniq: np.ndarray, owner: np.ndarray, days: np.ndarray) -> None:
        """Start the slots ``uniq`` whose owner is not ``owner`` afresh on ``days``."""
        fresh = self.owner[uniq] != owner
        if fresh.any():
            i = uniq[fresh]
            self.owner[i] = owner[fresh]
            self.level[i], self.spread[i], self.today[i] = 0.0, self.config.spread0, 0.0
            self.learnt[i], self.day[i] = 0, days[fresh]
            self.given[i] = np.inf  # its first day is seen part-way: neither learnt nor scored

    def observe(self, users: Sequence[str], slots: np.ndarray, buckets: np.ndarray,
                t_last: np.ndarray, counts: np.ndarray, bucket_seconds: int,
                shift: int = 0) -> list[DayEvidence]:
        """Committed rows (one per account and bucket; ``slots`` their featurizer rows,
        ``counts`` (k, NM) the bucket's own counts), taken bucket by bucket in bucket order:
        the day evidence they give. ``shift``: seconds added to event time before cutting
        days (:func:`day_shift`)."""
        if not len(users):
            return []
        days = (buckets.astype(np.int64) * bucket_seconds + shift) // DAY
        slots = slots.astype(np.int64)
        self._rows(users, slots, days)
        # by bucket, then slot: one stable sort of a combined key (lexsort's order, faster)
        b = buckets.astype(np.int64)
        order = stable_order((b - b.min()) * (int(slots.max()) + 1) + slots)
        counts = day_counts(counts)
        cuts = np.flatnonzero(np.diff(days[order])) + 1
        out: list[DayEvidence] = []
        cfg = self.config
        # the rows of one day at a time (a commit is an hour: one day, unless the day is cut
        # inside it), in bucket order and account by account within a bucket
        for g in np.split(order, cuts) if len(cuts) else (order,):
            i, d = slots[g], int(days[g[0]])
            # an account's first row of the day folds its last day in: before the day's rows
            # (nothing of the account comes before it), in the order of those first rows
            # (most commits: none, no sort)
            if (self.day[i] != d).any():
                uniq, first = np.unique(i, return_index=True)
                roll = uniq[np.argsort(first)]
                self._roll(roll[self.day[roll] != d], d)
            today = np.empty((len(g), NM), np.float32)
            armed = np.empty(len(g), bool)
            accumulate(self.today, self.learnt, i, counts[g], cfg.min_days, today, armed)
            ra = np.flatnonzero(armed)
            if not len(ra):
                continue
            ia = i[ra]
            pts = cfg.points(today[ra], self.level[ia])
            best, new, taken = np.empty(len(ra), np.int64), np.empty(len(ra)), np.empty(
                len(ra), bool)
            give(self.given, ia, pts, best, new, taken)
            for k in np.flatnonzero(taken).tolist():
                j, a, m = int(g[ra[k]]), int(ia[k]), int(best[k])
                out.append(DayEvidence(j, users[j], float(t_last[j]), float(new[k]),
                                       MEASURES[m], float(today[ra[k], m]),
                                       float(np.expm1(self.level[a, m]))))
        return out

    def _roll(self, i: np.ndarray, d: int) -> None:
        """Accounts ``i`` start day ``d``: fold their last day into their usual day."""
        cfg = self.config
        if self.record is not None:
            for a in i[(self.learnt[i] >= cfg.min_days) & np.isfinite(self.given[i])].tolist():
                self.record[(self._names[a], int(self.day[a]))] = float(self.given[a])
        x = np.log1p(self.today[i])
        lvl, sd, n = self.level[i], self.spread[i], self.learnt[i]
        idle = (n > 0) & (x[:, 0] < lvl[:, 0] + math.log(cfg.idle_share))
        learn = np.isfinite(self.given[i]) & ~idle & (
            (n < cfg.min_days) | (self.given[i] < cfg.learn_below))
        # before evidence starts, a day far busier than those learnt starts the level again
        # (they were idle days: an account first seen on a weekend)
        restart = learn & (n > 0) & (n < cfg.min_days) & (
            x[:, 0] > lvl[:, 0] - math.log(cfg.idle_share))
        n = np.where(restart, 0, n).astype(np.uint16)
        first = learn & (n == 0)
        alpha = np.maximum(1.0 / (n.astype(np.float32) + 1.0), cfg.alpha_min)[:, None]
        s = np.maximum(sd, cfg.spread_min)
        delta = np.clip(x - lvl, -cfg.clip_sd * s, cfg.clip_sd * s)
        new_lvl = np.where(first[:, None], x, lvl + alpha * delta)
        new_sd = np.where(first[:, None], sd,
                          sd + alpha * (np.minimum(np.abs(x - lvl), 3.0 * s) - sd))
        keep = learn[:, None]
        self.level[i] = np.where(keep, new_lvl, lvl)
        self.spread[i] = np.where(keep, new_sd, sd)
        self.learnt[i] = np.minimum(n + learn, 60000)
        self.today[i] = 0.0
        self.given[i] = 0.0
        self.day[i] = d

    def finish(self) -> None:
        """Record the days still open (end of a training replay)."""
        if self.record is None:
            return
        i = np.flatnonzero(self.owner)
        ok = (self.learnt[i] >= self.config.min_days) & np.isfinite(self.given[i])
        for a in i[ok].tolist():
            self.record[(self._names[a], int(self.day[a]))] = float(self.given[a])

    # -- saved state (watchdog.anomaly.stage_state) ------------------------------------------
    def state(self, row_users: Sequence[str | None]) -> dict[str, Any]:
        """The rows as plain data. Owner marks are of this process (:func:`owners`): which
        rows are their featurizer row's account's (``row_users``) is saved instead, to be
        marked again where they are loaded; a row's stale mark (its account forgotten, the row
        not committed since) is kept as is: in another process it is nobody's."""
        n = min(len(self.owner), len(row_users))
        users = row_users[:n]
        mine = np.zeros(len(self.owner), bool)
        # (None hashes too, and is no account: ~0.1 s per million rows in all)
        mine[:n] = (self.owner[:n] == owners(users)) & np.fromiter(  # type: ignore[arg-type]
            (u is not None for u in users), bool, n)
        return {"arrays": [pack(a) for a in self._arrays()], "mine": pack(mine)}

    def load_state(self, doc: dict[str, Any], row_users: Sequence[str | None]) -> None:
        """:meth:`state`'s rows back (:class:`StateError` if they do not fit)."""
        arrays = doc["arrays"]
        if not isinstance(arrays, list) or len(arrays) != len(self._arrays()):
            raise StateError("day baselines: arrays do not fit")
        cap = len(unpack(arrays[-1], np.uint32, (None,), "day baselines"))
        got = [unpack(a, o.dtype, (cap, *o.shape[1:]), "day baselines")
               for a, o in zip(arrays, self._arrays(), strict=True)]
        mine = np.flatnonzero(unpack(doc["mine"], np.bool_, (cap,), "day baselines"))
        if len(mine) and (mine[-1] >= len(row_users)
                          or any(row_users[r] is None for r in mine.tolist())):
            raise StateError("day baselines: rows of no account")
        (self.level, self.spread, self.today, self.given, self.learnt, self.day,
         self.owner) = got
        if len(mine):
            self.owner[mine] = owners([row_users[r] or "" for r in mine.tolist()])

    def usual(self, slot: int) -> dict[str, float]:
        """The usual day per measure (natural counts) of the account in featurizer row
        ``slot``."""
        i = slot
        return {m: float(np.expm1(self.level[i, k])) for k, m in enumerate(MEASURES)}


__all__: Sequence[str] = ("DAY_WORDS", "MEASURES", "DayBaselines", "DayConfig", "DayEvidence",
                          "day_counts")
