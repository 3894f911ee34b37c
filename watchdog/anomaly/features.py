"""Per-account behaviour over sliding windows of event time (1 hour and 24 hours).

Pure: no I/O, no clock, no asyncio. Events go in in event-time order (:meth:`Featurizer.observe`);
every 10 minutes of event time the buckets of the accounts that were active in them are
*committed*, and one feature vector per such account comes out (:class:`FeatureBatch`), as of
the end of that bucket. The vector describes the account's last hour and last 24 hours, the
same relative to the account's own history (EWMA baseline), and relative to its peers.

Memory is bounded: every tracked account is one row of a few fixed-size numpy arrays
(:data:`ROW_BYTES`, about 1.7 KB) plus its dictionary entry; windows are rings of buckets
(6 x 10 minutes, 24 x 1 hour), distinct counts are linear-counting sketches whose slots keep
the bucket they were last set in (so one sketch answers for any window), "never touched
before" is a small Bloom bitmap. Accounts idle for ``idle_ttl`` are evicted and their rows
reused. Stamps are 16-bit bucket numbers modulo 65536; a periodic sweep keeps stale ones from
wrapping round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zlib import crc32

import numpy as np

from watchdog.anomaly.peers import PeerBaselines
from watchdog.events import _NO_DATA, UNSET, AccessEvent
from watchdog.policy.model import Policy

BUCKET = 600  # seconds per bucket of the 1-hour window (and the scoring cadence)
PER_HOUR = 3600 // BUCKET
SLOTS_1H = PER_HOUR  # 10-minute buckets
SLOTS_24H = 24  # 1-hour buckets
WINDOW_BUCKETS = {"1h": SLOTS_1H, "24h": SLOTS_24H * PER_HOUR}

# feature vocabulary ----------------------------------------------------------------------
BASE = (
    "events", "subjects", "resources", "records", "bytes", "exports", "external",
    "offhours_share", "failed_logins", "new_resources", "new_categories", "categories",
    "sources", "new_sources", "rare_categories",
)
WINDOWS = ("1h", "24h")
WINDOW_FEATURES = tuple(f"{b}_{w}" for w in WINDOWS for b in BASE)
# Every window feature is computed relative to the account's own history (``rel_self``: how many
# standard deviations above its running baseline, beyond the first) and to its peers
# (``rel_peer``: how far beyond the peers' 99th percentile), upward only: insiders do more, or new
# things; a quiet hour is not a threat. The model sees a compact selection: an isolation forest
# dilutes a clear signal in one behaviour across every other dimension in which ordinary hours are
# occasionally rare, so each behaviour family appears once or twice, mostly against the peers
# (activity, breadth, volume, exports, outside destinations, off-hours, failed logins, novelty,
# categories the peers hardly touch) and for the three behaviours whose change over the account's
# own history matters most (activity, exports, new addresses). All of them stay available to the
# explanation.
MODEL_FEATURES: tuple[tuple[str, str], ...] = (
    ("events_1h", "peers"), ("events_24h", "peers"), ("subjects_1h", "peers"),
    ("bytes_1h", "peers"), ("exports_1h", "peers"), ("exports_24h", "peers"),
    ("external_1h", "peers"), ("offhours_share_1h", "peers"), ("failed_logins_1h", "peers"),
    ("new_resources_1h", "peers"), ("new_categories_1h", "peers"), ("new_sources_1h", "peers"),
    ("rare_categories_1h", "peers"), ("rare_categories_24h", "peers"),
    ("events_1h", "self"), ("exports_24h", "self"), ("new_sources_1h", "self"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f"{w}_vs_{k}" for w, k in MODEL_FEATURES)
# Bump when the meaning of a feature changes without its name changing.
FEATURE_VERSION = 6

NW = len(WINDOW_FEATURES)
_WIDX = {n: i for i, n in enumerate(WINDOW_FEATURES)}
_M_PEER = [(j, _WIDX[w]) for j, (w, k) in enumerate(MODEL_FEATURES) if k == "peers"]
_M_SELF = [(j, _WIDX[w]) for j, (w, k) in enumerate(MODEL_FEATURES) if k == "self"]
SHARE_FEATURES = frozenset(f"offhours_share_{w}" for w in WINDOWS)  # not log-scaled
_LOGGED = np.array([n not in SHARE_FEATURES for n in WINDOW_FEATURES])
# the smallest spread a baseline is credited with: log units, or a share for the shares
_FLOOR = np.where(_LOGGED, 0.5, 0.15)
_FLOOR_VAR = _FLOOR**2
PEER_SCALE = np.where(_LOGGED, 1.0, 10.0)  # onto the peers' histogram bins

EXPORT_ACTIONS = frozenset({"export", "download", "copy", "print", "transfer"})
_EXTERNAL_KINDS = frozenset({"external_media", "third_party", "cloud_storage"})
CATEGORIES = (
    "identity", "contact", "address", "payment", "my_number", "location", "purchase",
    "behavior", "device", "health", "preferences", "employment", "minor", "credentials",
)
_CAT_BIT = {c: 1 << i for i, c in enumerate(CATEGORIES)}
_CAT_SHIFTS = np.arange(len(CATEGORIES))

# counters kept per bucket: small ones saturate at 65535, large ones are float32
SMALL = ("events", "exports", "external", "offhours", "failed", "new_res", "new_cat",
         "new_src")
LARGE = ("records", "bytes", "subjects_sum")
_NS, _NL = len(SMALL), len(LARGE)
M_SUBJ, M_RES, M_SRC = 64, 32, 16  # linear-counting slots
SEEN_RES_BITS, SEEN_SRC_BITS = 512, 128  # "never before" Bloom bitmaps (one hash)
MAX_IDS_PER_EVENT = 256  # subject ids hashed per event; the rest count as anonymous
EIDS_KEPT = 5  # event ids cited by an alert: the account's last ones in the bucket
ALPHA_MIN = 0.01  # own baseline: running mean for 100 commits, then EWMA with this weight
_STALE = 40_000  # a fresh stamp's age: "never" (well beyond any window, below the wrap)
_SWEEP_EVERY = 16_384  # buckets (~57 days) between sweeps that keep stamps from wrapping

# distinct pseudo-random slots for subjects counted without ids (by a hash of the event id)
_PSEUDO = tuple(tuple((h + 37 * i) & (M_SUBJ - 1) for i in range(M_SUBJ)) for h in range(M_SUBJ))

ROW_BYTES = (
    2 * (SLOTS_1H + SLOTS_24H)  # bucket stamps
    + (SLOTS_1H + SLOTS_24H) * (2 * _NS + 4 * _NL)  # counters
    + 2 * (M_SUBJ + M_RES + M_SRC + len(CATEGORIES))  # sketches, category stamps
    + (SEEN_RES_BITS + SEEN_SRC_BITS) // 8 + 2  # seen resources, sources, categories
    + 2 * 2 * NW  # own baseline (float16 mean and variance)
    + 8 + 8 + 4 + 4 + 4  # first and last seen, commits, peer group and when looked up
)


class _Log:
    """The open bucket's events as parallel lists of plain numbers and strings, appended to
    through pre-bound methods; aggregated with numpy when the bucket is committed. No
    per-event tuple: numbers and strings are not tracked by the garbage collector, tuples
    are, and millions of them make the collector the largest cost of the whole stage."""

    __slots__ = ("cat_row", "cat_val", "eid", "flags", "num_bytes", "num_rec", "num_row",
                 "num_subj", "res_hash", "res_row", "row", "src_hash", "src_row", "subj_row",
                 "subj_slot", "t")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, [])


_EXPORT, _FAILED, _OFFHOURS, _EXTERNAL = 1, 2, 4, 8


@dataclass(slots=True)
class FeatureBatch:
    """Feature vectors of the accounts committed at one bucket boundary."""

    bucket: int  # the committed bucket (epoch seconds // BUCKET)
    users: list[str]
    gids: np.ndarray  # (k,) peer group index into ``group_names``
    group_names: list[str]  # the peer baselines' names (only ever appended to)
    x: np.ndarray  # (k, len(FEATURE_NAMES)) float32: the model's input
    raw: np.ndarray  # (k, NW) the window values (log scale; shares as they are)
    rel_self: np.ndarray  # (k, NW) sd above the account's own baseline, beyond 1 (>= 0)
    rel_peer: np.ndarray  # (k, NW) how far above the peers' 99th percentile (>= 0)
    t_last: np.ndarray  # (k,) event time of each account's last event in the bucket
    warm: np.ndarray  # (k,) bool: account tracked for longer than the warm-up
    own_mean: np.ndarray  # (k, NW) the account's own baseline before this bucket (log scale)
    own_var: np.ndarray
    peer_q: np.ndarray  # (k, 3, NW) the peer group's p10, p50, p99 (log scale)
    # the bucket's event ids; account j's are eids[order[starts[j]:ends[j]]], in order
    eids: Sequence[str]
    order: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    def group(self, j: int) -> str:
        return self.group_names[int(self.gids[j])]

    def event_ids(self, j: int, keep: int = EIDS_KEPT) -> tuple[str, ...]:
        """Account ``j``'s last ``keep`` event ids in the bucket, oldest first."""
        s, e = int(self.starts[j]), int(self.ends[j])
        return tuple(self.eids[i] for i in self.order[max(s, e - keep):e].tolist())

    def values(self, j: int) -> dict[str, float]:
        """Account ``j``'s window values in natural units (counts, bytes, shares)."""
        return {n: to_natural(n, float(v)) for n, v in zip(WINDOW_FEATURES, self.raw[j],
                                                             strict=True)}

    def index(self, user_id: str) -> int:
        return self.users.index(user_id)

    def select(self, mask: np.ndarray) -> FeatureBatch:
        idx = np.flatnonzero(mask)
        return FeatureBatch(
            self.bucket, [self.users[i] for i in idx.tolist()], self.gids[idx],
            self.group_names, self.x[idx], self.raw[idx], self.rel_self[idx],
            self.rel_peer[idx], self.t_last[idx], self.warm[idx],
            self.own_mean[idx], self.own_var[idx], self.peer_q[idx],
            self.eids, self.order, self.starts[idx], self.ends[idx])


def _h(s: str) -> int:
    return crc32(s.encode())


def _linear_count(empty: np.ndarray, m: int) -> np.ndarray:
    """Distinct items from the number of empty slots (inf when saturated)."""
    with np.errstate(divide="ignore"):
        return np.where(empty > 0, -m * np.log(np.maximum(empty, 1) / m), np.inf)


class Featurizer:
    """Sliding-window features per account; see the module docstring."""

    def __init__(
        self,
        policy: Policy,
        group_of: Callable[[str, float], str],
        *,
        peers: PeerBaselines | None = None,
        warmup: float = 25 * 3600.0,
        idle_ttl: float = 14 * 86400.0,
        capacity: int = 1024,
    ) -> None:
        self.policy = policy
        self.group_of = group_of
        self.peers = peers if peers is not None else PeerBaselines(NW, BUCKET, PEER_SCALE)
        self.warmup = warmup
        self.idle_ttl = idle_ttl
        self.rows: dict[str, int] = {}  # user id -> row
        self._row_user: list[str | None] = []  # row -> user id (None: free)
        self._free: list[int] = []
        self._cap = 0
        self._alloc(capacity)
        self._log = _Log()
        self._bucket: int | None = None
        self._minute = -1
        self._off = False
        self._last_sweep = 0
        self._last_evict_hour = 0
        self._hash_cache: dict[str, int] = {}
        self._cat_cache: dict[tuple[str, ...], int] = {}
        self._slot_cache: dict[str, int] = {}
        self.evicted = 0

    # -- storage ------------------------------------------------------------------------
    def _alloc(self, cap: int) -> None:
        old = self._cap
        n1, n24 = SLOTS_1H, SLOTS_24H

        def grow(name: str, shape: tuple[int, ...], dtype: type, fill: int | float = 0) -> None:
            new = np.full((cap, *shape), fill, dtype=dtype)
            if old:
                new[:old] = getattr(self, name)
            setattr(self, name, new)

        grow("st1", (n1,), np.uint16)
        grow("st24", (n24,), np.uint16)
        grow("small1", (n1, _NS), np.uint16)
        grow("small24", (n24, _NS), np.uint16)
        grow("large1", (n1, _NL), np.float32)
        grow("large24", (n24, _NL), np.float32)
        grow("cat_st", (len(CATEGORIES),), np.uint16)  # bucket each category was last touched
        grow("sk_subj", (M_SUBJ,), np.uint16)
        grow("sk_res", (M_RES,), np.uint16)
        grow("sk_src", (M_SRC,), np.uint16)
        grow("seen_res", (SEEN_RES_BITS // 64,), np.uint64)
        grow("seen_src", (SEEN_SRC_BITS // 64,), np.uint64)
        grow("seen_cat", (), np.uint16)
        grow("own_mean", (NW,), np.float16)
        grow("own_var", (NW,), np.float16)
        grow("first_seen", (), np.float64)
        grow("last_seen", (), np.float64, np.inf)  # free rows are never idle
        grow("commits", (), np.uint32)
        grow("gid", (), np.int32)
        grow("gid_hour", (), np.int32, -1)  # hour of event time the group was looked up
        self._free.extend(range(cap - 1, old - 1, -1))
        self._row_user.extend([None] * (cap - old))
        self._cap = cap

    def _new_row(self, uid: str, t: float) -> int:
        if not self._free:
            self._alloc(max(1024, self._cap * 3 // 2))
        r = self._free.pop()
        self.rows[uid] = r
        self._row_user[r] = uid
        bucket = int(t // BUCKET)
        stale1 = (bucket - _STALE) & 0xFFFF
        stale24 = (bucket // PER_HOUR - _STALE) & 0xFFFF
        for name in ("st1", "sk_subj", "sk_res", "sk_src", "cat_st"):
            getattr(self, name)[r] = stale1
        self.st24[r] = stale24
        for name in ("small1", "small24", "large1", "large24", "seen_res",
                     "seen_src", "seen_cat", "commits"):
            getattr(self, name)[r] = 0
        # a new account starts from its peers' baseline, not from zero
        gid = self.peers.gid(self.group_of(uid, t))
        mean, var = self.peers.moments(gid)
        self.own_mean[r] = mean
        self.own_var[r] = np.minimum(var, 6e4)
        self.first_seen[r] = t
        self.last_seen[r] = t
        self.gid[r] = gid
        self.gid_hour[r] = bucket // PER_HOUR
        return r

    def tracked(self) -> int:
        return len(self.rows)

    def memory_bytes(self) -> int:
        """Bytes held by the row arrays (all capacity, used or not)."""
        return self._cap * ROW_BYTES

    # -- per event ----------------------------------------------------------------------
    def observe(self, ev: AccessEvent, t: float) -> FeatureBatch | None:
        """Account for one event; returns the vectors of the bucket it closed, if any.

        An event older than the open bucket (late, out of order) joins the open bucket.
        """
        b = int(t // BUCKET)
        out = None
        cur_b = self._bucket
        if cur_b is None:
            self._bucket = b
            self._last_sweep = b
            self._last_evict_hour = b // PER_HOUR
            self.peers.rebase(b)
        elif b > cur_b:
            out = self._commit()
            self._bucket = b
            self._housekeeping(b, t)
        uid = ev.user.id
        r = self.rows.get(uid)
        if r is None:
            r = self._new_row(uid, t)
        log = self._log
        info = ev.event
        action = info.action
        flags = 0
        if action in EXPORT_ACTIONS:
            flags = _EXPORT
        elif action == "login" and info.outcome == "failure":
            flags = _FAILED
        minute = int(t // 60)
        if minute != self._minute:
            self._minute = minute
            hours = self.policy.business_hours
            self._off = hours is not None and not hours.contains(t)
        if self._off:
            flags |= _OFFHOURS
        dst = ev.destination
        if dst and self._external(dst.kind, dst.domain, action):
            flags |= _EXTERNAL
        log.row.append(r)
        log.t.append(t)
        log.eid.append(info.id)
        log.flags.append(flags)
        hashes = self._hash_cache
        src = ev.source
        if src and src.ip:
            ip = src.ip
            h = hashes.get(ip)
            if h is None:
                h = self._hash(ip)
            log.src_row.append(r)
            log.src_hash.append(h)
        d = ev.data
        if d is _NO_DATA:
            return out
        resource = d.resource
        if resource:
            h = hashes.get(resource)
            if h is None:
                h = self._hash(resource)
            log.res_row.append(r)
            log.res_hash.append(h)
        cats = d.categories
        if cats:
            mask = self._cat_cache.get(cats)
            if mask is None:
                mask = 0
                for c in cats:
                    mask |= _CAT_BIT.get(c, 0)
                self._cat_cache[cats] = mask
            log.cat_row.append(r)
            log.cat_val.append(mask)
        ids = d.subject_ids
        count = d.subject_count
        n = len(ids) if count is UNSET else count
        records, vol = d.records, d.bytes
        if n or records or vol:
            log.num_row.append(r)
            log.num_rec.append(records or 0)
            log.num_bytes.append(vol or 0)
            log.num_subj.append(n)
        if n:
            srow, sslot = log.subj_row, log.subj_slot
            slots = self._slot_cache
            for sid in (ids if len(ids) <= MAX_IDS_PER_EVENT else ids[:MAX_IDS_PER_EVENT]):
                slot = slots.get(sid)
                if slot is None:
                    if len(slots) >= 200_000:
                        slots.clear()
                    slot = slots[sid] = crc32(sid.encode()) & (M_SUBJ - 1)
                srow.append(r)
                sslot.append(slot)
            extra = n - min(len(ids), MAX_IDS_PER_EVENT)
            if extra > 0:  # subjects without ids: as many pseudo-random distinct slots
                k = min(extra, M_SUBJ)
                srow.extend([r] * k)
                sslot.extend(_PSEUDO[_h(info.id) & (M_SUBJ - 1)][:k])
        return out

    def _external(self, kind: object, domain: object, action: str) -> bool:
        if kind in _EXTERNAL_KINDS:
            return True
        if kind == "email" or action == "email":
            return bool(domain) and not self.policy.is_internal_domain(str(domain))
        return False

    def _hash(self, s: str) -> int:
        h = self._hash_cache.get(s)
        if h is None:
            if len(self._hash_cache) >= 100_000:
                self._hash_cache.clear()
            h = self._hash_cache[s] = _h(s)
        return h

    def flush(self) -> FeatureBatch | None:
        """Commit the open bucket now (end of input); later events may still join it."""
        return self._commit()

    # -- commit: one vectorised pass per bucket -------------------------------------------
    def _commit(self) -> FeatureBatch | None:
        log = self._log
        if not log.row:
            return None
        self._log = _Log()
        b = self._bucket
        assert b is not None
        ev_rows = np.asarray(log.row, np.int64)
        ev_id = log.eid
        rows, inv = np.unique(ev_rows, return_inverse=True)
        k = len(rows)

        def owners(row_list: list[int]) -> np.ndarray:
            return np.searchsorted(rows, np.asarray(row_list, np.int64))

        flags = np.asarray(log.flags, np.int64)
        small = np.zeros((k, _NS), np.int64)
        small[:, 0] = np.bincount(inv, minlength=k)
        for col, bit in ((1, _EXPORT), (2, _EXTERNAL), (3, _OFFHOURS), (4, _FAILED)):
            small[:, col] = np.bincount(inv, weights=(flags & bit) > 0, minlength=k)
        large = np.zeros((k, _NL))
        if log.num_row:
            o = owners(log.num_row)
            for col, vals in enumerate((log.num_rec, log.num_bytes, log.num_subj)):
                large[:, col] = np.bincount(o, weights=np.asarray(vals, np.float64),
                                            minlength=k)
        cats = np.zeros(k, np.int64)
        if log.cat_row:
            np.bitwise_or.at(cats, owners(log.cat_row), np.asarray(log.cat_val, np.int64))
        res_row, res_hash = log.res_row, log.res_hash
        src_row, src_hash = log.src_row, log.src_hash
        t_ev = np.asarray(log.t, np.float64)
        t_last = np.full(k, -np.inf)
        np.maximum.at(t_last, inv, t_ev)
        # each account's event ids, grouped (resolved only for the accounts alerted on)
        order = np.argsort(inv, kind="stable")
        ends = np.cumsum(small[:, 0])
        starts = ends - small[:, 0]

        b16 = b & 0xFFFF
        h = b // PER_HOUR
        h16 = h & 0xFFFF

        # peer groups: looked up again once per account and hour of event time
        stale = np.flatnonzero(self.gid_hour[rows] != h)
        if len(stale):
            row_user, group_of, gid_of = self._row_user, self.group_of, self.peers.gid
            for j in stale.tolist():
                r = int(rows[j])
                u = row_user[r]
                assert u is not None
                self.gid[r] = gid_of(group_of(u, float(t_last[j])))
            self.gid_hour[rows[stale]] = h
        gids = self.gid[rows].astype(np.int64)

        # never-before: resources, sources, categories
        if res_row:
            small[:, 5] = self._new_bits(self.seen_res, rows, owners(res_row),
                                         np.asarray(res_hash, np.int64), SEEN_RES_BITS)
        if src_row:
            small[:, 7] = self._new_bits(self.seen_src, rows, owners(src_row),
                                         np.asarray(src_hash, np.int64), SEEN_SRC_BITS)
        seen = self.seen_cat[rows].astype(np.int64)
        small[:, 6] = np.bitwise_count(cats & ~seen)
        self.seen_cat[rows] = (seen | cats).astype(np.uint16)

        # rings: a slot still holding an older bucket is cleared before adding
        self._ring_add(self.st1, self.small1, self.large1, rows, b % SLOTS_1H, b16, small,
                       large)
        self._ring_add(self.st24, self.small24, self.large24, rows, h % SLOTS_24H, h16, small,
                       large)
        touched = ((cats[:, None] >> _CAT_SHIFTS) & 1).astype(bool)
        if touched.any():
            cs = self.cat_st[rows]
            cs[touched] = b16
            self.cat_st[rows] = cs

        # sketches: slots remember the bucket they were last set in
        for sk, rl, vals, m in ((self.sk_subj, log.subj_row, log.subj_slot, M_SUBJ),
                                (self.sk_res, res_row, res_hash, M_RES),
                                (self.sk_src, src_row, src_hash, M_SRC)):
            if rl:
                sk[np.asarray(rl, np.int64), np.asarray(vals, np.int64) & (m - 1)] = b16

        # categories the account's peers hardly ever touch (their baseline before this bucket)
        rare = self.peers.rare_categories(gids)
        x_win = self._window_features(rows, b16, h16, rare)
        own_m = self.own_mean[rows].astype(np.float64)
        own_v = self.own_var[rows].astype(np.float64)
        peer_q = self.peers.quantiles(gids)  # p10, p50, p99 of each row's group
        p50, p99 = peer_q[:, 1], peer_q[:, 2]
        # beyond one standard deviation above the account's usual (most hours are within it)
        x_self = np.maximum((x_win - own_m) / np.sqrt(own_v + _FLOOR_VAR) - 1.0, 0.0)
        x_peer = np.maximum(x_win - p99, 0.0) / (p99 - p50 + _FLOOR)
        x = np.empty((len(rows), len(FEATURE_NAMES)), np.float32)
        for j, w in _M_PEER:
            x[:, j] = x_peer[:, w]
        for j, w in _M_SELF:
            x[:, j] = x_self[:, w]

        # learn: own baseline (running mean, then EWMA), peers, bookkeeping
        n = self.commits[rows].astype(np.float64)
        alpha = np.maximum(ALPHA_MIN, 1.0 / (n + 1.0))[:, None]
        delta = x_win - own_m
        self.own_mean[rows] = own_m + alpha * delta
        self.own_var[rows] = np.minimum((1 - alpha) * (own_v + alpha * delta * delta), 6e4)
        self.commits[rows] = np.minimum(n + 1, 2**32 - 1)
        self.peers.add(gids, x_win, cats)
        self.last_seen[rows] = np.maximum(self.last_seen[rows], t_last)
        warm = (b + 1) * BUCKET - self.first_seen[rows] >= self.warmup
        row_user = self._row_user
        users = [row_user[r] for r in rows.tolist()]
        return FeatureBatch(
            b, users, gids, self.peers.names, x, x_win,  # type: ignore[arg-type]
            x_self.astype(np.float32), x_peer.astype(np.float32), t_last, warm,
            own_m, own_v, peer_q, ev_id, order, starts, ends)

    @staticmethod
    def _new_bits(seen: np.ndarray, rows: np.ndarray, owner: np.ndarray, hashes: np.ndarray,
                  bits: int) -> np.ndarray:
        """Per account, how many distinct hashed items it never had before; marks them."""
        k = len(rows)
        bit = hashes % bits
        pairs = np.unique(owner * bits + bit)  # one count per distinct item and account
        owner, bit = pairs // bits, pairs % bits
        word = bit >> 6
        mask = np.left_shift(np.uint64(1), (bit & 63).astype(np.uint64))
        r = rows[owner]
        is_new = (seen[r, word] & mask) == 0
        np.bitwise_or.at(seen, (r, word), mask)
        return np.bincount(owner[is_new], minlength=k)

    @staticmethod
    def _ring_add(st: np.ndarray, small_r: np.ndarray, large_r: np.ndarray, rows: np.ndarray,
                  slot: int, stamp: int, small: np.ndarray, large: np.ndarray) -> None:
        stale = rows[st[rows, slot] != stamp]
        if len(stale):
            st[stale, slot] = stamp
            small_r[stale, slot] = 0
            large_r[stale, slot] = 0
        cur = small_r[rows, slot].astype(np.int64) + small
        small_r[rows, slot] = np.minimum(cur, 0xFFFF)
        large_r[rows, slot] = large_r[rows, slot] + large

    def _window_features(self, rows: np.ndarray, b16: int, h16: int,
                         rare: np.ndarray) -> np.ndarray:
        k = len(rows)
        out = np.empty((k, NW))
        nb = len(BASE)
        now = np.uint16(b16)
        # uint16 arithmetic wraps modulo 65536, as the stamps do
        ages = [now - sk[rows] for sk in (self.sk_subj, self.sk_res, self.sk_src, self.cat_st)]
        rare_bits = ((rare[:, None] >> _CAT_SHIFTS) & 1).astype(bool)
        for wi, (st, small_r, large_r, stamp, span) in enumerate((
                (self.st1, self.small1, self.large1, b16, SLOTS_1H),
                (self.st24, self.small24, self.large24, h16, SLOTS_24H))):
            valid = ((np.uint16(stamp) - st[rows]) < span).astype(np.float32)[:, None, :]
            s = np.matmul(valid, small_r[rows].astype(np.float32))[:, 0].astype(np.float64)
            lg = np.matmul(valid, large_r[rows])[:, 0].astype(np.float64)
            window = WINDOW_BUCKETS[WINDOWS[wi]]
            empty_subj, empty_res, empty_src = (
                np.count_nonzero(a >= window, axis=1).astype(np.float64) for a in ages[:3])
            in_window = ages[3] < window
            events = s[:, 0]
            o = wi * nb
            out[:, o + 0] = events
            out[:, o + 1] = np.minimum(lg[:, 2], _linear_count(empty_subj, M_SUBJ))
            # a saturated sketch cannot count further: at most one per event
            out[:, o + 2] = np.minimum(events, _linear_count(empty_res, M_RES))
            out[:, o + 3] = lg[:, 0]
            out[:, o + 4] = lg[:, 1]
            out[:, o + 5] = s[:, 1]
            out[:, o + 6] = s[:, 2]
            out[:, o + 7] = np.divide(s[:, 3], events, out=np.zeros(k), where=events > 0)
            out[:, o + 8] = s[:, 4]
            out[:, o + 9] = s[:, 5]
            out[:, o + 10] = s[:, 6]
            out[:, o + 11] = np.count_nonzero(in_window, axis=1)
            out[:, o + 12] = np.minimum(events, _linear_count(empty_src, M_SRC))
            out[:, o + 13] = s[:, 7]
            out[:, o + 14] = np.count_nonzero(in_window & rare_bits, axis=1)
        out[:, _LOGGED] = np.log1p(out[:, _LOGGED])
        return out

    # -- housekeeping -------------------------------------------------------------------
    def _housekeeping(self, b: int, t: float) -> None:
        hour = b // PER_HOUR
        if hour != self._last_evict_hour:
            self._last_evict_hour = hour
            self.peers.refresh(b)
            self.evict(t - self.idle_ttl)
        if b - self._last_sweep >= _SWEEP_EVERY:
            self._last_sweep = b
            self._sweep(b)

    def evict(self, before: float) -> int:
        """Forget accounts whose last event is before ``before``; returns how many."""
        if not self.rows:
            return 0
        dropped = 0
        row_user = self._row_user
        busy = set(self._log.row)
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

    def _sweep(self, b: int) -> None:
        """Re-stamp slots older than any window as "never", before their age wraps."""
        for st, now in ((self.st1, b), (self.sk_subj, b), (self.sk_res, b), (self.sk_src, b),
                        (self.cat_st, b), (self.st24, b // PER_HOUR)):
            age = (np.uint16(now & 0xFFFF) - st).astype(np.int64) & 0xFFFF
            st[age > 2 * WINDOW_BUCKETS["24h"]] = (now - _STALE) & 0xFFFF


def to_natural(name: str, value: float) -> float:
    """A window value in its own units (count, bytes, share) from its log scale."""
    if name in SHARE_FEATURES:
        return value
    return math.expm1(value)
