"""Per-account behaviour over sliding windows of event time (1 hour and 24 hours).

Pure: no I/O, no clock, no asyncio. Events go in in event-time order (:meth:`Featurizer.observe`);
every 10 minutes of event time the buckets of the accounts that were active in them are
*committed*, and one feature vector per such account comes out (:class:`FeatureBatch`), as of
the end of that bucket. The vector describes the account's last hour and last 24 hours, the
same relative to the account's own history (EWMA baseline), and relative to its peers.

Cost: per event, :meth:`Featurizer.observe` (or :meth:`Featurizer.observe_many`, a list at a
time) only keeps the event; every few thousand events (and at the end of each hour) the kept
ones are reduced to one row per account and bucket, column by column (a list comprehension
per field, then numpy group-by sums and bit-ors: :meth:`Featurizer._absorb`); at the end of
each hour of event time the hour's rows are committed together, with a number of numpy
operations that does not depend on the number of accounts (:meth:`Featurizer._commit`). The
model's inputs are derived from the window values only when asked for (:func:`model_inputs`),
for the rows that need them.

Memory is bounded: every tracked account is one row of a few fixed-size numpy arrays
(:data:`ROW_BYTES`, about 1.4 KB) plus its dictionary entry; windows are rings of buckets
(6 x 10 minutes, 24 x 1 hour), distinct counts are linear-counting sketches whose slots keep
the bucket they were last set in (so one sketch answers for any window), "never touched
before" is a small Bloom bitmap. Accounts idle for ``idle_ttl`` are evicted and their rows
reused. Stamps are 16-bit bucket numbers modulo 65536; a periodic sweep keeps stale ones from
wrapping round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol
from zlib import crc32

import numpy as np

from watchdog.anomaly.peers import PeerBaselines
from watchdog.events import UNSET, AccessEvent, Data
from watchdog.policy.model import Policy

BUCKET = 600  # seconds per bucket of the 1-hour window
SCORING_WINDOW = 1200  # seconds: the stage scores an account's latest vector per window
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

# counters kept per bucket: small ones saturate at 65535, large ones are float32
SMALL = ("events", "exports", "external", "offhours", "failed", "new_res", "new_cat",
         "new_src")
LARGE = ("records", "bytes", "subjects_sum")
_NS, _NL = len(SMALL), len(LARGE)
M_SUBJ, M_RES, M_SRC = 64, 32, 16  # linear-counting slots
SEEN_RES_BITS, SEEN_SRC_BITS = 512, 128  # "never before" Bloom bitmaps (one hash)
MAX_IDS_PER_EVENT = 256  # subject ids hashed per event; the rest count as anonymous
EIDS_KEPT = 5  # event ids cited by an alert: the account's last ones in the bucket
SEGMENT = 8192  # events kept before they are reduced to rows (bounds the memory they hold)
ALPHA_MIN = 0.01  # own baseline: running mean for 100 commits, then EWMA with this weight
_STALE = 40_000  # a fresh stamp's age: "never" (well beyond any window, below the wrap)
_SWEEP_EVERY = 16_384  # buckets (~57 days) between sweeps that keep stamps from wrapping

# distinct pseudo-random slots for subjects counted without ids (by a hash of the event id)
_PSEUDO = tuple(tuple((h + 37 * i) & (M_SUBJ - 1) for i in range(M_SUBJ)) for h in range(M_SUBJ))
# ... as slot masks: _PSEUDO_MASK[h][k] has the first k of _PSEUDO[h]
_PSEUDO_MASK = tuple(
    tuple(sum(1 << s for s in set(slots[:k])) for k in range(M_SUBJ + 1)) for slots in _PSEUDO)

# The sketches of one account are one row of uint16 stamps: subjects, resources, sources, and
# the bucket each category was last touched in.
_SK_SUBJ, _SK_RES, _SK_SRC, _SK_CAT = 0, M_SUBJ, M_SUBJ + M_RES, M_SUBJ + M_RES + M_SRC
_SK_WIDTH = _SK_CAT + len(CATEGORIES)
# "never before" bitmaps, one row of uint64 words: resources, then sources
_RES_WORDS, _SRC_WORDS = SEEN_RES_BITS // 64, SEEN_SRC_BITS // 64
_SEEN_WORDS = _RES_WORDS + _SRC_WORDS
# an account's row of uint16: ring stamps (1 h, 24 h), ring counters (1 h, 24 h), sketch and
# category stamps, seen categories; and of float32: the rings' large counters (1 h, 24 h)
_U_ST1 = 0
_U_ST24 = _U_ST1 + SLOTS_1H
_U_SM1 = _U_ST24 + SLOTS_24H
_U_SM24 = _U_SM1 + SLOTS_1H * _NS
_U_SK = _U_SM24 + SLOTS_24H * _NS
_U_CAT = _U_SK + _SK_WIDTH
_U_WIDTH = _U_CAT + 1
_F_WIDTH = (SLOTS_1H + SLOTS_24H) * _NL
# the rings' slots side by side: which window each belongs to, and that window's length
_SLOTS = SLOTS_1H + SLOTS_24H
_SLOT_WINDOW = np.repeat([0, 1], [SLOTS_1H, SLOTS_24H])
_SLOT_SPAN = np.repeat(np.array([SLOTS_1H, SLOTS_24H], np.uint16), [SLOTS_1H, SLOTS_24H])
_SLOT_IN = np.equal.outer(np.arange(len(WINDOWS)), _SLOT_WINDOW).astype(np.float32)
# per window: which sketch slots and categories count (their stamps' age in buckets)
_SPANS = np.array([WINDOW_BUCKETS[w] for w in WINDOWS], np.uint16)

ROW_BYTES = (
    2 * (SLOTS_1H + SLOTS_24H)  # bucket stamps
    + (SLOTS_1H + SLOTS_24H) * (2 * _NS + 4 * _NL)  # counters
    + 2 * (M_SUBJ + M_RES + M_SRC + len(CATEGORIES))  # sketches, category stamps
    + (SEEN_RES_BITS + SEEN_SRC_BITS) // 8 + 2  # seen resources, sources, categories
    + 2 * 2 * NW  # own baseline (float16 mean and variance)
    + 8 + 8 + 4 + 4 + 4  # first and last seen, commits, peer group and when looked up
)


def _linear_count(empty: np.ndarray, m: int) -> np.ndarray:
    """Distinct items from the number of empty slots (inf when saturated)."""
    with np.errstate(divide="ignore"):
        return np.where(empty > 0, -m * np.log(np.maximum(empty, 1) / m), np.inf)


# _linear_count of every possible number of empty slots, for the three sketches side by side:
# the estimate of sketch i with e empty slots is _LC_TABLE[_LC_OFFSETS[i] + e]
_LC_TABLE = np.concatenate([_linear_count(np.arange(m + 1, dtype=np.float64), m)
                            for m in (M_SUBJ, M_RES, M_SRC)])
_LC_OFFSETS = np.array([0, M_SUBJ + 1, M_SUBJ + M_RES + 2])

# where the window values come from, per window block of len(BASE) columns
_NB = len(BASE)
_FROM_SMALL = (np.array([BASE.index(n) for n in (
    "events", "exports", "external", "failed_logins", "new_resources", "new_categories",
    "new_sources")]), np.array([SMALL.index(n) for n in (
        "events", "exports", "external", "failed", "new_res", "new_cat", "new_src")]))
_FROM_LARGE = (np.array([BASE.index("records"), BASE.index("bytes")]),
               np.array([LARGE.index("records"), LARGE.index("bytes")]))
_SKETCHED = np.array([BASE.index(n) for n in ("subjects", "resources", "sources")])
_M_PEER_J = np.array([j for j, _ in _M_PEER])
_M_PEER_W = np.array([w for _, w in _M_PEER])
_M_SELF_J = np.array([j for j, _ in _M_SELF])
_M_SELF_W = np.array([w for _, w in _M_SELF])
_CAT_MASKS: dict[tuple[str, ...], int] = {(): 0}  # categories of an event -> bit mask
# what an action counts as: 1 an export, 2 a login (failed ones count), else nothing
_ACTION_KIND = {**dict.fromkeys(EXPORT_ACTIONS, 1), "login": 2}
_NO_BUCKET = -(2**62)


class _Rows:
    """Events reduced to one row per account and bucket (the uncommitted part of the open
    hour), sorted by (account row, bucket); the small counters' never-before columns are
    filled in at the commit."""

    __slots__ = ("bks", "bloom", "cats", "eid_n", "eids", "large", "rows", "small", "subj",
                 "t_last")

    def __init__(self, rows: np.ndarray, bks: np.ndarray, small: np.ndarray,
                 large: np.ndarray, cats: np.ndarray, subj: np.ndarray, bloom: np.ndarray,
                 t_last: np.ndarray, eids: list[str], eid_n: np.ndarray) -> None:
        self.rows = rows  # (g,) the accounts' rows
        self.bks = bks  # (g,) buckets
        self.small = small  # (g, _NS) int64
        self.large = large  # (g, _NL) float64
        self.cats = cats  # (g,) int64 category bits
        self.subj = subj  # (g,) uint64 subject sketch slot bits
        self.bloom = bloom  # (g, _SEEN_WORDS) "<u8": resource bits, then source bits
        self.t_last = t_last  # (g,) the last event time
        self.eids = eids  # the last event ids of each row, row after row
        self.eid_n = eid_n  # (g,) how many each

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, idx: np.ndarray) -> _Rows:
        ends = np.cumsum(self.eid_n)
        pos, n = _ranges(ends[idx] - self.eid_n[idx], self.eid_n[idx])
        eids = self.eids
        return _Rows(self.rows[idx], self.bks[idx], self.small[idx], self.large[idx],
                     self.cats[idx], self.subj[idx], self.bloom[idx], self.t_last[idx],
                     [eids[i] for i in pos.tolist()], n)


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions of consecutive ranges (``starts``, ``sizes``), one after the other."""
    total = int(sizes.sum())
    ends = np.cumsum(sizes)
    return np.arange(total) - np.repeat(ends - sizes - starts, sizes), sizes


def _heads(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal values starts in sorted ``keys`` (non-empty)."""
    new = np.empty(len(keys), bool)
    new[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    return np.flatnonzero(new)


def _by_account_and_bucket(rows: np.ndarray, bks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stable order that groups items by (account row, bucket) (the buckets of one hour),
    and where each group starts in it."""
    key = rows * 8 + (bks - bks.min())  # an hour: at most 6 buckets
    order = np.argsort(key, kind="stable")
    return order, _heads(key[order])


def _tails(sizes: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Of consecutive groups of ``sizes`` items: the positions of each group's last ``keep``
    items, and how many that is per group."""
    n = np.minimum(sizes, keep)
    return _ranges(np.cumsum(sizes) - n, n)


class FeatureBatch:
    """Feature vectors committed together: one per account and bucket it was active in (the
    buckets of at most one hour), each as of the end of its bucket. Rows come in no particular
    order: ``buckets`` and ``accounts`` say whose and when.

    The window values and the baselines they are compared with are kept; the model's inputs
    (and the relative views they are chosen from) are computed from them when first asked
    for, so that a consumer that needs them for only some rows (the stage scores an
    account's latest vector only) computes them for those rows only (:func:`model_inputs`).
    """

    __slots__ = ("_peer_q", "_rel", "accounts", "buckets", "closed_before", "eid_ends",
                 "eid_starts", "eids", "gids", "group_names", "own_mean", "own_var",
                 "quantiles", "raw", "t_last", "users", "warm")

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
            self._rel = model_inputs(self.raw, self.own_mean, self.own_var, self.peer_q)
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

    def inputs(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``idx``' window values, own baseline and peer quantiles: what
        :func:`model_inputs` computes the model's input from."""
        return (self.raw[idx], self.own_mean[idx], self.own_var[idx],
                self.quantiles[self.gids[idx]])

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

    def values(self, j: int) -> dict[str, float]:
        """Account ``j``'s window values in natural units (counts, bytes, shares)."""
        return {n: to_natural(n, float(v)) for n, v in zip(WINDOW_FEATURES, self.raw[j],
                                                             strict=True)}

    def index(self, user_id: str) -> int:
        return self.users.index(user_id)

    def select(self, which: np.ndarray) -> FeatureBatch:
        """The rows of a boolean mask, or at the given positions (in that order)."""
        idx = np.flatnonzero(which) if which.dtype == bool else which
        pick = idx.tolist()
        ids = [self.event_ids(i) for i in pick]
        ends = np.cumsum([len(e) for e in ids], dtype=np.int64)
        return FeatureBatch(
            self.buckets[idx], [self.users[i] for i in pick], self.gids[idx],
            self.group_names, self.raw[idx], self.t_last[idx], self.warm[idx],
            self.own_mean[idx], self.own_var[idx], self.quantiles,
            [e for e_ids in ids for e in e_ids], ends, ends - [len(e) for e in ids],
            self.accounts[idx], self.closed_before)


def model_inputs(raw: np.ndarray, own_mean: np.ndarray, own_var: np.ndarray,
                 peer_q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the model's input (float32), rel_self, rel_peer) of window values ``raw`` against
    the account's own baseline and its peers' quantiles (row by row, for any rows)."""
    p50, p99 = peer_q[:, 1], peer_q[:, 2]
    # beyond one standard deviation above the account's usual (most hours are within it)
    x_self = np.maximum((raw - own_mean) / np.sqrt(own_var + _FLOOR_VAR) - 1.0, 0.0)
    x_peer = np.maximum(raw - p99, 0.0) / (p99 - p50 + _FLOOR)
    x = np.empty((len(raw), len(FEATURE_NAMES)), np.float32)
    x[:, _M_PEER_J] = x_peer[:, _M_PEER_W]
    x[:, _M_SELF_J] = x_self[:, _M_SELF_W]
    return x, x_self, x_peer


def _h(s: str) -> int:
    return crc32(s.encode())


class Featurizer:
    """Sliding-window features per account; see the module docstring.

    Per event, :meth:`observe` only keeps the event; the kept ones are reduced column by
    column a few thousand at a time (:meth:`_absorb`) and committed an hour at a time.
    ``policy_source``: an object whose ``policy`` attribute is the current policy (the
    engine), read where the policy matters, so that a reloaded policy applies at once.
    """

    # the row arrays (see _alloc)
    u16: np.ndarray
    f32: np.ndarray
    seen: np.ndarray
    own: np.ndarray
    meta: np.ndarray
    first_seen: np.ndarray
    last_seen: np.ndarray


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
        self._policy = policy
        self._policy_source = policy_source
        self.group_of = group_of
        self.peers = peers if peers is not None else PeerBaselines(NW, BUCKET, PEER_SCALE)
        self.warmup = warmup
        self.idle_ttl = idle_ttl
        self.rows: dict[str, int] = {}  # user id -> row
        self._row_user: list[str | None] = []  # row -> user id (None: free)
        self._free: list[int] = []
        self._cap = 0
        self._alloc(capacity)
        self._bucket = _NO_BUCKET  # the open bucket (none before the first event)
        self._end: float = -math.inf  # event time at which the open bucket closes
        self._buf: list[tuple[AccessEvent, float]] = []  # events not reduced to rows yet
        self._runs: list[tuple[int, int]] = [(0, _NO_BUCKET)]  # (from position, bucket) in it
        self._parts: list[_Rows] = []  # this hour's rows not committed yet
        self._committed_open = _NO_BUCKET  # the open bucket at the last commit
        self._last_sweep = 0
        self._last_evict_hour = 0
        self._res_bits: dict[str, int] = {}
        self._src_bits: dict[str, int] = {}
        self.evicted = 0

    @property
    def policy(self) -> Policy:
        return self._policy if self._policy_source is None else self._policy_source.policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = policy

    # -- storage ------------------------------------------------------------------------
    # Every tracked account is one row of each of a few arrays, so that a commit gathers and
    # scatters each of them once: uint16 (ring stamps, small counters, sketch and category
    # stamps, seen categories), float32 (large counters), uint64 (never-before bitmaps),
    # float16 (own baseline), int32 (commits, peer group, hour it was looked up) and the
    # first and last event times.
    def _alloc(self, cap: int) -> None:
        old = self._cap

        def grow(name: str, shape: tuple[int, ...], dtype: type, fill: int | float = 0) -> None:
            new = np.full((cap, *shape), fill, dtype=dtype)
            if old:
                new[:old] = getattr(self, name)
            setattr(self, name, new)

        grow("u16", (_U_WIDTH,), np.uint16)
        grow("f32", (_F_WIDTH,), np.float32)
        grow("seen", (_SEEN_WORDS,), np.uint64)
        grow("own", (2 * NW,), np.float16)  # own baseline: mean, variance (log scale)
        grow("meta", (3,), np.int32)  # commits, peer group, hour of event time looked up
        grow("first_seen", (), np.float64)
        grow("last_seen", (), np.float64, np.inf)  # free rows are never idle
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
        u = self.u16[r]
        u[:] = 0
        u[_U_ST1:_U_ST24] = u[_U_SK:_U_CAT] = (bucket - _STALE) & 0xFFFF
        u[_U_ST24:_U_SM1] = (bucket // PER_HOUR - _STALE) & 0xFFFF
        self.f32[r] = 0
        self.seen[r] = 0
        # a new account starts from its peers' baseline, not from zero
        gid = self.peers.gid(self.group_of(uid, t))
        mean, var = self.peers.moments(gid)
        own = self.own[r]
        own[:NW] = mean
        own[NW:] = np.minimum(var, 6e4)
        self.meta[r] = (0, gid, bucket // PER_HOUR)
        self.first_seen[r] = t
        self.last_seen[r] = t
        return r

    def tracked(self) -> int:
        return len(self.rows)

    def memory_bytes(self) -> int:
        """Bytes held by the row arrays (all capacity, used or not)."""
        return self._cap * ROW_BYTES

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
        if len(buf) >= SEGMENT:
            self._absorb()
        return out

    def observe_many(self, items: Sequence[tuple[AccessEvent, float]]) -> list[FeatureBatch]:
        """:meth:`observe` of each (event, event time) in turn; the vectors of the hours they
        closed."""
        out: list[FeatureBatch] = []
        n = len(items)
        if not n:
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
        if len(buf) >= SEGMENT:
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
            self._runs.append((len(self._buf), b))
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

    def _external(self, kind: object, domain: object, action: str) -> bool:
        if kind in _EXTERNAL_KINDS:
            return True
        if kind == "email" or action == "email":
            return bool(domain) and not self._policy.is_internal_domain(str(domain))
        return False

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
    def _absorb(self) -> None:
        """Reduce the kept events to rows (one per account and bucket)."""
        buf = self._buf
        n = len(buf)
        if not n:
            return
        runs = self._runs
        self._buf, self._runs = [], [(0, self._bucket)]
        starts = [i for i, _ in runs]
        bks = np.repeat(np.array([b for _, b in runs], np.int64), np.diff([*starts, n]))
        evs = [e for e, _ in buf]
        ts = np.fromiter([t for _, t in buf], np.float64, n)
        # accounts: a new one gets its row at its first event
        uids = [e.user.id for e in evs]
        get_row = self.rows.get
        rows_l = [get_row(u, -1) for u in uids]
        if -1 in rows_l:
            for i in [i for i, r in enumerate(rows_l) if r < 0]:
                r = get_row(uids[i])
                rows_l[i] = self._new_row(uids[i], buf[i][1]) if r is None else r
        infos = [e.event for e in evs]
        eids = [i.id for i in infos]
        actions = [i.action for i in infos]
        # counters: events, exports, external, off hours, failed logins
        flags = np.zeros((n, 5), np.int64)
        flags[:, 0] = 1
        kind = _ACTION_KIND.get
        kinds = np.fromiter([kind(a, 0) for a in actions], np.int8, n)
        flags[:, 1] = kinds == 1
        logins = np.flatnonzero(kinds == 2).tolist()
        if logins:
            flags[logins, 4] = [infos[i].outcome == "failure" for i in logins]
        dests = [e.destination for e in evs]
        sent = [i for i, d in enumerate(dests) if d]
        if sent:
            external = self._external
            flags[sent, 2] = [external(dests[i].kind, dests[i].domain, actions[i])  # type: ignore[union-attr]
                              for i in sent]
        hours = self._policy.business_hours
        if hours is not None:  # looked up once per minute
            _, first, where = np.unique(ts // 60, return_index=True,
                                        return_inverse=True)
            off = [not hours.contains(t) for t in ts[first].tolist()]
            flags[:, 3] = np.array(off, bool)[where]
        # never-before bits: the source address's, the resource's (cached per string)
        ips = [e.source.ip if e.source else None for e in evs]
        src_bit = _bits(self._src_bits, ips, SEEN_SRC_BITS)
        datas = [e.data for e in evs]
        res_bit = _bits(self._res_bits, [d.resource for d in datas], SEEN_RES_BITS)
        cat_mask = _CAT_MASKS.get
        cats_l = [d.categories for d in datas]
        masks = [cat_mask(c, -1) for c in cats_l]
        if -1 in masks:
            for i in [i for i, m in enumerate(masks) if m < 0]:
                masks[i] = _cat_mask(cats_l[i])
        cats = np.array(masks, np.int64)
        large = np.empty((n, _NL))
        large[:, 0] = np.fromiter([d.records or 0 for d in datas], np.float64, n)
        large[:, 1] = np.fromiter([d.bytes or 0 for d in datas], np.float64, n)
        subj, large[:, 2] = _subjects(datas, eids)

        # group by (account, bucket), events in order within a group
        rows = np.array(rows_l, np.int64)
        order, heads = _by_account_and_bucket(rows, bks)
        g = len(heads)
        group = np.empty(n, np.int64)
        group[order] = np.repeat(np.arange(g), np.diff(np.append(heads, n)))
        small = np.zeros((g, _NS), np.int64)
        small[:, :5] = np.add.reduceat(flags[order], heads)
        # bitmaps: set the bits of each group's events, then pack them (little-endian words)
        bits = np.zeros((g, SEEN_RES_BITS + SEEN_SRC_BITS), bool)
        has = res_bit >= 0
        bits[group[has], res_bit[has]] = True
        has = src_bit >= 0
        bits[group[has], SEEN_RES_BITS + src_bit[has]] = True
        bloom = np.packbits(bits, axis=1, bitorder="little").view("<u8")
        sizes = np.diff(np.append(heads, n))
        pos, eid_n = _tails(sizes, EIDS_KEPT)
        self._parts.append(_Rows(
            rows[order[heads]], bks[order[heads]], small, np.add.reduceat(large[order], heads),
            np.bitwise_or.reduceat(cats[order], heads),
            np.bitwise_or.reduceat(subj[order], heads), bloom,
            np.maximum.reduceat(ts[order], heads), [eids[i] for i in order[pos].tolist()],
            eid_n))

    def _rows(self) -> _Rows | None:
        """Every uncommitted row of the hour, one per account and bucket, sorted."""
        self._absorb()
        parts = self._parts
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        # the same account and bucket in several parts: add up, in order
        rows = np.concatenate([p.rows for p in parts])
        bks = np.concatenate([p.bks for p in parts])
        order, heads = _by_account_and_bucket(rows, bks)
        eid_n = np.concatenate([p.eid_n for p in parts])
        eids = [e for p in parts for e in p.eids]
        # each group's event ids: its members' in order, then the last EIDS_KEPT
        member_pos, _ = _ranges((np.cumsum(eid_n) - eid_n)[order], eid_n[order])
        pos, n = _tails(np.add.reduceat(eid_n[order], heads), EIDS_KEPT)
        return _Rows(
            rows[order[heads]], bks[order[heads]],
            np.add.reduceat(np.concatenate([p.small for p in parts])[order], heads),
            np.add.reduceat(np.concatenate([p.large for p in parts])[order], heads),
            np.bitwise_or.reduceat(np.concatenate([p.cats for p in parts])[order], heads),
            np.bitwise_or.reduceat(np.concatenate([p.subj for p in parts])[order], heads),
            np.bitwise_or.reduceat(np.concatenate([p.bloom for p in parts])[order], heads),
            np.maximum.reduceat(np.concatenate([p.t_last for p in parts])[order], heads),
            [eids[i] for i in member_pos[pos].tolist()], n)

    def _closed_rows(self) -> _Rows | None:
        """The uncommitted rows of closed buckets; the open bucket's stay for later."""
        rows = self._rows()
        self._parts = []
        self._committed_open = self._bucket
        if rows is None:
            return None
        still = rows.bks >= self._bucket
        if still.all():
            self._parts = [rows]
            return None
        if still.any():
            self._parts = [rows.take(np.flatnonzero(still))]
            rows = rows.take(np.flatnonzero(~still))
        return rows


    # -- commit: one vectorised pass per hour -------------------------------------------
    def _commit(self, part: _Rows | None, closed_before: float | None = None,
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
        k = len(part)
        rows_am = part.rows
        starts = _heads(rows_am)  # each account's first row
        acct_am = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, k)))
        rank_am = np.arange(k) - starts[acct_am]
        # ... then rank by rank, accounts in order within a rank
        rm = np.lexsort((acct_am, rank_am))  # rank-major position -> account-major position
        to_rm = np.empty(k, np.int64)
        to_rm[rm] = np.arange(k)
        prev = to_rm[rm - 1]  # each row's previous row of its account (rank > 0 rows only)
        lasts = to_rm[np.append(starts[1:], k) - 1]  # each account's last row
        offs = np.concatenate(([0], np.cumsum(np.bincount(rank_am))))
        ranks = len(offs) - 1
        acct = acct_am[rm]
        rows = rows_am[rm]
        bks = part.bks[rm]
        t_last = part.t_last[rm]
        small = part.small[rm]
        large = part.large[rm]
        cats = part.cats[rm]
        bloom = part.bloom[rm]
        eid_ends = np.cumsum(part.eid_n)
        eid_starts = (eid_ends - part.eid_n)[rm]
        eid_ends = eid_ends[rm]
        row_user = self._row_user
        users = [row_user[r] for r in rows.tolist()]
        # sketch slots touched: subjects; resources, sources, categories (the low bits of the
        # bitmaps' bits)
        r64 = np.bitwise_or.reduce(bloom[:, :_RES_WORDS], axis=1)
        s64 = np.bitwise_or.reduce(bloom[:, _RES_WORDS:], axis=1)
        s32 = s64 | (s64 >> 32)
        touched_w = np.empty((k, 2), "<u8")  # little-endian: bit i is in byte i // 8
        touched_w[:, 0] = part.subj[rm]
        touched_w[:, 1] = (((r64 | (r64 >> 32)) & 0xFFFFFFFF)
                           | (((s32 | (s32 >> 16)) & 0xFFFF) << 32)
                           | (cats.astype(np.uint64) << 48))
        touched = np.unpackbits(touched_w.view(np.uint8), axis=1, count=_SK_WIDTH,
                                bitorder="little").view(bool)

        ur = rows[: offs[1]]  # rank 0: every account once, in order
        h = int(bks[0]) // PER_HOUR
        b16 = (bks & 0xFFFF).astype(np.uint16)
        now = np.empty((k, 2), np.uint16)  # per row: its bucket and hour stamps
        now[:, 0] = b16
        now[:, 1] = h & 0xFFFF
        ring_cols = np.empty((k, 2), np.intp)  # per row: its 1-hour and 24-hour ring slots
        ring_cols[:, 0] = bks % SLOTS_1H
        ring_cols[:, 1] = SLOTS_1H + h % SLOTS_24H

        # peer groups: looked up again once per account and hour of event time
        meta = self.meta[ur]
        stale = np.flatnonzero(meta[:, 2] != h)
        if len(stale):
            group_of, gid_of = self.group_of, self.peers.gid
            meta[stale, 1] = [gid_of(group_of(users[j], float(t_last[j])))  # type: ignore[arg-type]
                              for j in stale.tolist()]
            meta[stale, 2] = h
        gids = meta[acct, 1].astype(np.int64)

        # state updates, rank by rank (contiguous blocks, updated in place): rings, sketch
        # stamps, never-before bits
        u = np.empty((k, _U_WIDTH), np.uint16)
        f = np.empty((k, _F_WIDTH), np.float32)
        seen = np.empty((k, _SEEN_WORDS), np.uint64)
        for r in range(ranks):
            lo, hi = int(offs[r]), int(offs[r + 1])
            if r:
                src = prev[lo:hi]
                u[lo:hi], f[lo:hi], seen[lo:hi] = u[src], f[src], seen[src]
            else:
                u[lo:hi], f[lo:hi], seen[lo:hi] = self.u16[ur], self.f32[ur], self.seen[ur]
            _update(u[lo:hi], f[lo:hi], seen[lo:hi], small[lo:hi], large[lo:hi],
                    bloom[lo:hi], cats[lo:hi], touched[lo:hi], now[lo:hi], ring_cols[lo:hi])
        self.u16[ur] = u[lasts]
        self.f32[ur] = f[lasts]
        self.seen[ur] = seen[lasts]

        # each row's windows as of the end of its bucket
        valid = ((now[:, _SLOT_WINDOW] - u[:, _U_ST1:_U_SM1]) < _SLOT_SPAN).astype(np.float32)
        rare = self.peers.rare_categories(gids)  # what the peers hardly touch (this hour)
        x_win = _window_features(valid, u[:, _U_SM1:_U_SK].reshape(k, _SLOTS, _NS),
                                 f.reshape(k, _SLOTS, _NL), b16[:, None] - u[:, _U_SK:_U_CAT],
                                 rare)

        # learn: own baseline (running mean, then EWMA, stored as float16 between buckets)
        own = self.own[ur]
        cur_m = own[:, :NW].astype(np.float64)
        cur_v = own[:, NW:].astype(np.float64)
        cur_n = meta[:, 0].astype(np.float64)
        own_m, own_v = np.empty((k, NW)), np.empty((k, NW))
        for r in range(ranks):
            lo, hi = int(offs[r]), int(offs[r + 1])
            a_i = acct[lo:hi]
            m, v, n = cur_m[a_i], cur_v[a_i], cur_n[a_i]
            own_m[lo:hi], own_v[lo:hi] = m, v
            alpha = np.maximum(ALPHA_MIN, 1.0 / (n + 1.0))[:, None]
            delta = x_win[lo:hi] - m
            cur_m[a_i] = (m + alpha * delta).astype(np.float16)
            cur_v[a_i] = np.minimum((1 - alpha) * (v + alpha * delta * delta),
                                    6e4).astype(np.float16)
            cur_n[a_i] = np.minimum(n + 1, 2**31 - 1)
        own[:, :NW] = cur_m
        own[:, NW:] = cur_v
        self.own[ur] = own
        meta[:, 0] = cur_n
        self.meta[ur] = meta
        quantiles = self.peers.quantile_table()  # the peers' baselines before this hour
        self.peers.add(gids, x_win, cats)
        latest = np.full(len(ur), -np.inf)
        np.maximum.at(latest, acct, t_last)
        self.last_seen[ur] = np.maximum(self.last_seen[ur], latest)
        warm = (bks + 1) * BUCKET - self.first_seen[rows] >= self.warmup
        return FeatureBatch(bks, users, gids, self.peers.names, x_win,  # type: ignore[arg-type]
                            t_last, warm, own_m, own_v, quantiles, part.eids, eid_ends,
                            eid_starts, rows,
                            self._bucket if closed_before is None else closed_before)

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
            self._sweep(b)

    def evict(self, before: float) -> int:
        """Forget accounts whose last event is before ``before``; returns how many."""
        if not self.rows:
            return 0
        dropped = 0
        row_user = self._row_user
        busy = ({r for p in self._parts for r in p.rows.tolist()}
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

    def _sweep(self, b: int) -> None:
        """Re-stamp slots older than any window as "never", before their age wraps."""
        u = self.u16
        for st, now in ((u[:, _U_ST1:_U_ST24], b), (u[:, _U_SK:_U_CAT], b),
                        (u[:, _U_ST24:_U_SM1], b // PER_HOUR)):
            age = (np.uint16(now & 0xFFFF) - st).astype(np.int64) & 0xFFFF
            st[age > 2 * WINDOW_BUCKETS["24h"]] = (now - _STALE) & 0xFFFF


def _update(u: np.ndarray, f: np.ndarray, seen: np.ndarray, small: np.ndarray,
            large: np.ndarray, bloom: np.ndarray, cats: np.ndarray, touched: np.ndarray,
            now: np.ndarray, ring_cols: np.ndarray) -> None:
    """Add one bucket's sums (``small``, ``large``, bits) to accounts' state rows ``u``, ``f``,
    ``seen`` in place, one bucket per row (``now``: its bucket and hour stamps, ``ring_cols``:
    its 1-hour and 24-hour ring slots); fills in ``small``'s never-before counts."""
    k = len(u)
    # never-before: resources, sources, categories
    fresh = np.bitwise_count(bloom & ~seen)
    small[:, 5] = fresh[:, :_RES_WORDS].sum(axis=1)
    small[:, 7] = fresh[:, _RES_WORDS:].sum(axis=1)
    seen |= bloom
    seen_c = u[:, _U_CAT].astype(np.int64)
    small[:, 6] = np.bitwise_count(cats & ~seen_c)
    u[:, _U_CAT] = seen_c | cats
    # both rings at once (their slots side by side: 1 h, then 24 h): a slot still holding
    # an older bucket is cleared before adding
    at = np.arange(k)[:, None], ring_cols
    st = u[:, _U_ST1:_U_SM1]
    small_r = u[:, _U_SM1:_U_SK].reshape(k, _SLOTS, _NS)
    large_r = f.reshape(k, _SLOTS, _NL)
    same = (st[at] == now)[:, :, None]
    st[at] = now
    small_r[at] = np.minimum(np.where(same, small_r[at], 0) + small[:, None], 0xFFFF)
    large_r[at] = np.where(same, large_r[at], 0) + large[:, None]
    # sketches: slots remember the bucket they were last set in
    np.copyto(u[:, _U_SK:_U_CAT], now[:, :1], where=touched)


def _window_features(valid: np.ndarray, small_r: np.ndarray, large_r: np.ndarray,
                     ages: np.ndarray, rare: np.ndarray) -> np.ndarray:
    """(k, NW) window values from the rings (``valid``: (k, _SLOTS) 1 for a slot within its
    window), the sketch stamps' ages and each account's peers' rare categories."""
    k = len(valid)
    out = np.empty((k, len(WINDOWS), _NB))
    # counters: exact sums (integers below 2**24) of the slots within each window
    s = np.matmul(valid[:, None, :] * _SLOT_IN, small_r.astype(np.float32)).astype(np.float64)
    # large counters: float32 sums, window by window as a (1, slots) x (slots, 3) product
    lg = np.empty((k, len(WINDOWS), _NL))
    for w, (lo, hi) in enumerate(((0, SLOTS_1H), (SLOTS_1H, _SLOTS))):
        lg[:, w] = np.matmul(np.ascontiguousarray(valid[:, None, lo:hi]),
                             np.ascontiguousarray(large_r[:, lo:hi]))[:, 0]
    # sketch slots and categories set within each window (uint16 ages wrap as stamps do), as
    # bits of two little-endian words: subjects; resources, sources, categories (_SK_* order)
    inside = np.packbits(ages[:, None, :] < _SPANS[:, None], axis=-1, bitorder="little")
    words = inside.view("<u8")  # (k, windows, 2)
    low, high = words[..., 0], words[..., 1]
    empty = np.empty((k, len(WINDOWS), 3), np.int64)
    empty[..., 0] = M_SUBJ - np.bitwise_count(low)
    empty[..., 1] = M_RES - np.bitwise_count(high & 0xFFFFFFFF)
    empty[..., 2] = M_SRC - np.bitwise_count((high >> 32) & 0xFFFF)
    cats = high >> 48
    events = s[..., 0]
    out[..., _FROM_SMALL[0]] = s[..., _FROM_SMALL[1]]
    out[..., _FROM_LARGE[0]] = lg[..., _FROM_LARGE[1]]
    # subjects: at most the subjects counted; a saturated sketch cannot count further than
    # one resource or source per event
    out[..., _SKETCHED] = np.minimum(np.stack((lg[..., 2], events, events), axis=-1),
                                     _LC_TABLE[empty + _LC_OFFSETS])
    out[..., BASE.index("offhours_share")] = np.divide(
        s[..., SMALL.index("offhours")], events, out=np.zeros((k, len(WINDOWS))),
        where=events > 0)
    out[..., BASE.index("categories")] = np.bitwise_count(cats)
    out[..., BASE.index("rare_categories")] = np.bitwise_count(
        cats & rare.astype(np.uint64)[:, None])
    flat = out.reshape(k, NW)
    flat[:, _LOGGED] = np.log1p(flat[:, _LOGGED])
    return flat


def _bits(cache: dict[str, int], keys: list[str | None], bits: int) -> np.ndarray:
    """Each key's bit in a ``bits``-wide bitmap (its hash modulo ``bits``; -1 for none),
    cached per string."""
    get = cache.get
    out = [get(k, -2) if k else -1 for k in keys]
    if -2 in out:
        if len(cache) >= 100_000:
            cache.clear()
        for i in [i for i, v in enumerate(out) if v == -2]:
            key = keys[i]
            assert key
            out[i] = cache[key] = _h(key) & (bits - 1)
    return np.array(out, np.int64)


def _subjects(datas: list[Data], eids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per event: the subject sketch's slot bits and the number of subjects."""
    ids_l = [d.subject_ids for d in datas]
    counts_l = [d.subject_count for d in datas]
    # the common case, a list of one id and no count, in one pass; the others after
    masks = [1 << (crc32(ids[0].encode()) & (M_SUBJ - 1)) if len(ids) == 1 else 0
             for ids in ids_l]
    counts = [len(ids) for ids in ids_l]
    for i in [i for i, (ids, c) in enumerate(zip(ids_l, counts_l, strict=True))
              if c is not UNSET or len(ids) > 1]:
        c = counts_l[i]
        n = counts[i] if c is UNSET else c
        counts[i] = n  # type: ignore[assignment]
        masks[i] = _slots(ids_l[i], eids[i], n) if n else 0  # type: ignore[arg-type]
    return np.array(masks, np.uint64), np.array(counts, np.float64)


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


class _HasPolicy(Protocol):
    @property
    def policy(self) -> Policy: ...


def to_natural(name: str, value: float) -> float:
    """A window value in its own units (count, bytes, share) from its log scale."""
    if name in SHARE_FEATURES:
        return value
    return math.expm1(value)
