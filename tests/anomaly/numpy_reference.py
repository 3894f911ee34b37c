"""The featurizer's per-row arithmetic and the reduction's group-by as they were written in
numpy (main at 5255329, before the compiled kernels), and the day scale's (main at 30526dd):
the specification the kernels are compared with, bit for bit, on random rows
(tests/anomaly/test_kernels.py, test_day_kernel.py)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from watchdog.anomaly.batch import (
    _FLOOR_P,
    _FLOOR_S,
    _M_NOVEL_J,
    _M_PEER_J,
    _M_PEER_W,
    _M_SELF_J,
    _M_SELF_W,
    FeatureBatch,
    tail_inputs,
)
from watchdog.anomaly.day_baseline import (
    DAY,
    MEASURES,
    DayBaselines,
    DayEvidence,
    day_counts,
    owners,
)
from watchdog.anomaly.layout import (
    F_WIDTH,
    LARGE,
    LC_OFFSETS,
    LC_TABLE,
    M_RES,
    M_SRC,
    M_SUBJ,
    NL,
    NS,
    RES_WORDS,
    RING_OFFS,
    SEEN_WORDS,
    SK_WIDTH,
    SLOT_SPAN,
    SLOT_WINDOW,
    SLOTS,
    SMALL,
    SPANS,
    U_CAT,
    U_SK,
    U_SM1,
    U_ST1,
    U_WIDTH,
)
from watchdog.anomaly.own_baseline import (
    _ALPHA32,
    _FLOOR_VAR32,
    _TAIL_1H,
    CLIP,
    GATE,
    PRIOR,
    VAR_MAX,
    excess,
)
from watchdog.anomaly.peers import BIN, NBINS, QUANTILES, SHRINK, PeerBaselines
from watchdog.anomaly.vocabulary import (
    BASE,
    FEATURE_NAMES,
    LOGGED,
    NW,
    SHORT_BASE,
    SHORT_BUCKETS,
    SLOTS_1H,
    TAIL_COLS,
    WINDOW_OF,
    WINDOW_SECONDS,
    WINDOWS,
)

_SLOT_IN = np.equal.outer(np.arange(len(WINDOWS)), SLOT_WINDOW).astype(np.float32)
_DROP, _ONE = np.uint32(13), np.uint32(1)  # float32 -> float16 mantissa: 13 bits dropped
_HALF, _KEEP = np.uint32(0x0FFF), np.uint32(0xFFFFE000)
_F16_TINY, _F16_SCALE = np.float32(2.0**-14), np.float32(2.0**24)

# where the window values come from, per window block of len(BASE) columns
_NB = len(BASE)
_FROM_SMALL = (np.array([BASE.index(n) for n in (
    "events", "exports", "external", "failed_logins", "new_resources", "new_categories",
    "new_sources")]), np.array([SMALL.index(n) for n in (
        "events", "exports", "external", "failed", "new_res", "new_cat", "new_src")]))
_FROM_LARGE = (np.array([BASE.index("records"), BASE.index("bytes")]),
               np.array([LARGE.index("records"), LARGE.index("bytes")]))
_SKETCHED = np.array([BASE.index(n) for n in ("subjects", "resources", "sources")])
_NWIN = len(WINDOWS) * _NB  # the windows' blocks; the last 20 minutes' counts follow
_FROM_SHORT = np.array([SMALL.index(n) for n in SHORT_BASE])


def touched_slots(subj: np.ndarray, bloom: np.ndarray, cats: np.ndarray) -> np.ndarray:
    """(k, SK_WIDTH) bool: the sketch slots rows set (subjects; resources, sources,
    categories: the low bits of the bitmaps' bits) from their subject slot bits, never-before
    bitmaps and category bits."""
    k = len(subj)
    r64 = np.bitwise_or.reduce(bloom[:, :RES_WORDS], axis=1)
    s64 = np.bitwise_or.reduce(bloom[:, RES_WORDS:], axis=1)
    s32 = s64 | (s64 >> 32)
    touched_w = np.empty((k, 2), "<u8")  # little-endian: bit i is in byte i // 8
    touched_w[:, 0] = subj
    touched_w[:, 1] = (((r64 | (r64 >> 32)) & 0xFFFFFFFF)
                       | (((s32 | (s32 >> 16)) & 0xFFFF) << 32)
                       | (cats.astype(np.uint64) << 48))
    return np.unpackbits(touched_w.view(np.uint8), axis=1, count=SK_WIDTH,
                         bitorder="little").view(bool)


def update(u: np.ndarray, f: np.ndarray, seen: np.ndarray, small: np.ndarray,
            large: np.ndarray, bloom: np.ndarray, cats: np.ndarray, touched: np.ndarray,
            now: np.ndarray, ring_cols: np.ndarray) -> None:
    """Add one bucket's sums (``small``, ``large``, bits) to accounts' state rows ``u``, ``f``,
    ``seen`` in place, one bucket per row (``now``: its bucket and hour stamps, ``ring_cols``:
    its 1-hour and 24-hour ring slots); fills in ``small``'s never-before counts."""
    k = len(u)
    # never-before: resources, sources, categories
    fresh = np.bitwise_count(bloom & ~seen)
    small[:, 5] = fresh[:, :RES_WORDS].sum(axis=1)
    small[:, 7] = fresh[:, RES_WORDS:].sum(axis=1)
    seen |= bloom
    seen_c = u[:, U_CAT].astype(np.int64)
    small[:, 6] = np.bitwise_count(cats & ~seen_c)
    u[:, U_CAT] = seen_c | cats
    # both rings at once (their slots side by side: 1 h, then 24 h): a slot still holding
    # an older bucket is cleared before adding
    at = np.arange(k)[:, None], ring_cols
    st = u[:, U_ST1:U_SM1]
    small_r = u[:, U_SM1:U_SK].reshape(k, SLOTS, NS)
    large_r = f.reshape(k, SLOTS, NL)
    same = (st[at] == now)[:, :, None]
    st[at] = now
    small_r[at] = np.minimum(np.where(same, small_r[at], 0) + small[:, None], 0xFFFF)
    large_r[at] = np.where(same, large_r[at], 0) + large[:, None]
    # sketches: slots remember the bucket they were last set in
    np.copyto(u[:, U_SK:U_CAT], now[:, :1], where=touched)


def window_values(valid: np.ndarray, small_r: np.ndarray, large_r: np.ndarray,
                     ages: np.ndarray, rare: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """(k, NW) window values from the rings (``valid``: (k, SLOTS) 1 for a slot within its
    window; ``recent``: (k, SLOTS_1H) 1 for a slot of the hour's ring within the last 20
    minutes), the sketch stamps' ages and each account's peers' rare categories."""
    k = len(valid)
    flat = np.empty((k, NW))
    out = flat[:, :_NWIN].reshape(k, len(WINDOWS), _NB)  # a view: rows are contiguous
    # counters: exact sums (integers below 2**24) of the slots within each window
    s = np.matmul(valid[:, None, :] * _SLOT_IN, small_r.astype(np.float32)).astype(np.float64)
    # large counters: float32 sums, window by window as a (1, slots) x (slots, 3) product
    lg = np.empty((k, len(WINDOWS), NL))
    for w, (lo, hi) in enumerate(pairwise(RING_OFFS)):
        lg[:, w] = np.matmul(np.ascontiguousarray(valid[:, None, lo:hi]),
                             np.ascontiguousarray(large_r[:, lo:hi]))[:, 0]
    # sketch slots and categories set within each window (uint16 ages wrap as stamps do), as
    # bits of two little-endian words: subjects; resources, sources, categories (_SK_* order)
    inside = np.packbits(ages[:, None, :] < SPANS[:, None], axis=-1, bitorder="little")
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
                                     LC_TABLE[empty + LC_OFFSETS])
    out[..., BASE.index("offhours_share")] = np.divide(
        s[..., SMALL.index("offhours")], events, out=np.zeros((k, len(WINDOWS))),
        where=events > 0)
    out[..., BASE.index("categories")] = np.bitwise_count(cats)
    out[..., BASE.index("rare_categories")] = np.bitwise_count(
        cats & rare.astype(np.uint64)[:, None])
    flat[:, _NWIN:] = np.matmul(recent[:, None, :],
                                small_r[:, :SLOTS_1H, _FROM_SHORT].astype(np.float32))[:, 0]
    flat[:, LOGGED] = np.log1p(flat[:, LOGGED])
    return flat


def read_windows(u: np.ndarray, f: np.ndarray, now: np.ndarray, rare: np.ndarray) -> np.ndarray:
    """(k, NW) each state row's windows as of the end of its bucket (``now``: its stamps, see
    :func:`stamps`; ``rare``: its peers' rare categories)."""
    k = len(u)
    age = now[:, SLOT_WINDOW] - u[:, U_ST1:U_SM1]  # uint16: wraps as the stamps do
    valid = (age < SLOT_SPAN).astype(np.float32)
    recent = (age[:, :SLOTS_1H] < SHORT_BUCKETS).astype(np.float32)
    return window_values(valid, u[:, U_SM1:U_SK].reshape(k, SLOTS, NS),
                         f.reshape(k, SLOTS, NL), now[:, :1] - u[:, U_SK:U_CAT], rare, recent)


def advance(state: tuple[np.ndarray, np.ndarray, np.ndarray], prev: np.ndarray,
            offs: np.ndarray, small: np.ndarray, large: np.ndarray, bloom: np.ndarray,
            cats: np.ndarray, touched: np.ndarray, now: np.ndarray,
            ring_cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accounts' state rows (uint16, float32, never-before words) after each of their rows of
    one hour, rank by rank (rank ``r`` is ``offs[r]:offs[r + 1]``; ``prev``: each row's
    previous row of its account), each from the state its previous rank left (rank 0: from
    ``state``, one row per account in order); fills in ``small``'s never-before counts."""
    k = len(small)
    u = np.empty((k, U_WIDTH), np.uint16)
    f = np.empty((k, F_WIDTH), np.float32)
    seen = np.empty((k, SEEN_WORDS), np.uint64)
    for r in range(len(offs) - 1):
        lo, hi = int(offs[r]), int(offs[r + 1])
        if r:
            src = prev[lo:hi]
            u[lo:hi], f[lo:hi], seen[lo:hi] = u[src], f[src], seen[src]
        else:
            u[lo:hi], f[lo:hi], seen[lo:hi] = state
        update(u[lo:hi], f[lo:hi], seen[lo:hi], small[lo:hi], large[lo:hi],
               bloom[lo:hi], cats[lo:hi], touched[lo:hi], now[lo:hi], ring_cols[lo:hi])
    return u, f, seen


def as_float16(x: np.ndarray) -> np.ndarray:
    """float32 ``x`` (>= 0, below 65504) rounded as float16 would hold it, kept as float32:
    what ``x.astype(np.float16)`` gives, bit for bit, in a few integer passes (numpy's
    conversion to float16 takes ~15 times as long as an addition)."""
    b = x.view(np.uint32)
    # normal numbers: round the 23-bit mantissa to 10 bits, half to even (a carry moves the
    # exponent on, as it should)
    out: np.ndarray = ((b + (_HALF + ((b >> _DROP) & _ONE))) & _KEEP).view(np.float32)
    sub = np.abs(x) < _F16_TINY  # float16 subnormals: multiples of 2**-24
    if sub.any():
        out[sub] = np.rint(x[sub] * _F16_SCALE) / _F16_SCALE
    return out


def learn(mean: np.ndarray, var: np.ndarray, counts: np.ndarray, x_win: np.ndarray,
          acct: np.ndarray, offs: np.ndarray, p99: np.ndarray, age: np.ndarray,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fold window values ``x_win`` (rank-major rows: rank ``r`` is ``offs[r]:offs[r + 1]``,
    of accounts ``acct``; ``p99``: their peers' 99th percentiles; ``age``: seconds each
    account has been tracked at the end of the row's bucket) into accounts' baselines
    (``mean`` float32, ``var`` float16, (accounts, NW); updated in place) after ``counts`` commits
    each. Returns each row's baseline before its own bucket (mean, variance), the accounts'
    new commit counts, and which rows were within the gate (the peers learn those only)."""
    k = len(x_win)
    cur_m = mean.astype(np.float32)
    cur_v = var.astype(np.float32)
    cur_n = counts.astype(np.float32)
    own_m, own_v = np.empty((k, NW), np.float32), np.empty((k, NW), np.float32)
    x32 = x_win.astype(np.float32)
    usual = np.empty(k, bool)
    for r in range(len(offs) - 1):
        lo, hi = int(offs[r]), int(offs[r + 1])
        a_i = acct[lo:hi]
        m, v, n = cur_m[a_i], cur_v[a_i], cur_n[a_i]
        own_m[lo:hi], own_v[lo:hi] = m, v
        x = x32[lo:hi]
        learn = age[lo:hi, None] >= WINDOW_SECONDS[WINDOW_OF][None, :]
        far = excess(x, m, v, p99[lo:hi]) >= GATE
        learn[:, TAIL_COLS] &= ~far
        usual[lo:hi] = ~far[:, _TAIL_1H].any(axis=1)
        alpha = np.maximum(_ALPHA32[None, :], (1.0 / (n + 1.0 + PRIOR))[:, None])
        alpha *= learn
        lim = CLIP * np.sqrt(v + _FLOOR_VAR32)
        delta = np.minimum(np.maximum(x - m, -lim), lim)
        cur_m[a_i] = m + alpha * delta
        cur_v[a_i] = as_float16(np.minimum((1 - alpha) * (v + alpha * delta * delta),
                                           VAR_MAX))
        cur_n[a_i] = np.minimum(n + 1, 2**31 - 1)
    mean[:] = cur_m
    var[:] = cur_v
    return own_m, own_v, cur_n, usual


def group(order: np.ndarray, heads: np.ndarray, fl: np.ndarray, off: np.ndarray,
          res_bit: np.ndarray, src_bit: np.ndarray, cats: np.ndarray, subj: np.ndarray,
          large: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, ...]:
    """The reduction's group-by (reduction.reduce_events before group_kernel): small, large,
    cats, subj, bloom, t_last per group."""
    n = len(order)
    flags = np.zeros((n, 5), np.int64)
    flags[:, 0] = 1
    flags[:, 1] = fl & 1
    flags[:, 2] = (fl >> 2) & 1
    flags[:, 3] = off
    flags[:, 4] = (fl >> 1) & 1
    g = len(heads)
    grp = np.empty(n, np.int64)
    grp[order] = np.repeat(np.arange(g), np.diff(np.append(heads, n)))
    small = np.zeros((g, NS), np.int64)
    small[:, :5] = np.add.reduceat(flags[order], heads)
    bits = np.zeros((g, 512 + 128), bool)
    has = res_bit >= 0
    bits[grp[has], res_bit[has]] = True
    has = src_bit >= 0
    bits[grp[has], 512 + src_bit[has]] = True
    bloom = np.packbits(bits, axis=1, bitorder="little").view("<u8")
    return (small, np.add.reduceat(large[order], heads),
            np.bitwise_or.reduceat(cats[order], heads),
            np.bitwise_or.reduceat(subj[order], heads), bloom,
            np.maximum.reduceat(ts[order], heads))


def scoring(b: FeatureBatch, idx: np.ndarray, levels: np.ndarray | None,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FeatureBatch.scoring before scoring_kernel: model inputs, tail deviations, columns."""
    raw, own_m, own_v = b.raw[idx], b.own_mean[idx], b.own_var[idx]
    q = b.quantiles[:, 1:][b.gids[idx]]  # p50, p99
    cold = ~b.warm[idx]
    x = np.empty((len(idx), len(FEATURE_NAMES)), np.float32)
    p50, p99 = q[:, 0, _M_PEER_W], q[:, 1, _M_PEER_W]
    x[:, _M_PEER_J] = np.maximum(raw[:, _M_PEER_W] - p99, 0.0) / (p99 - p50 + _FLOOR_P)
    x[:, _M_SELF_J] = np.maximum((raw[:, _M_SELF_W] - own_m[:, _M_SELF_W])
                                 / np.sqrt(own_v[:, _M_SELF_W] + _FLOOR_S) - 1.0, 0.0)
    if cold.any():
        at = np.flatnonzero(cold)
        x[at[:, None], _M_SELF_J] = 0.0
        x[at[:, None], _M_NOVEL_J] = 0.0
    d, col = tail_inputs(raw, own_m, own_v, q, cold, p99_at=1, levels=levels)
    return x, d, col


class DayBaselinesNumpy(DayBaselines):
    """DayBaselines.observe before day_kernel: bucket by bucket in numpy, every row's owner
    marked."""

    def _rows(self, users: Sequence[str], slots: np.ndarray, days: np.ndarray) -> None:
        top = int(slots.max()) + 1
        if top > len(self.day):
            old = self._arrays()
            self._alloc(max(top, len(self.day) + len(self.day) // 4))
            for new, o in zip(self._arrays(), old, strict=True):
                new[:len(o)] = o
        owner = owners(users)  # was crc32(u.encode()) | 1, the same for the same account
        fresh = self.owner[slots] != owner
        if fresh.any():
            i = slots[fresh]
            self.owner[i] = owner[fresh]
            self.level[i], self.spread[i], self.today[i] = 0.0, self.config.spread0, 0.0
            self.learnt[i], self.day[i] = 0, days[fresh]
            self.given[i] = np.inf
        if self.record is not None:
            self._names.update(zip(slots.tolist(), users, strict=True))

    def observe(self, users: Sequence[str], slots: np.ndarray, buckets: np.ndarray,
                t_last: np.ndarray, counts: np.ndarray, bucket_seconds: int,
                shift: int = 0) -> list[DayEvidence]:
        if not len(users):
            return []
        days = (buckets.astype(np.int64) * bucket_seconds + shift) // DAY
        slots = slots.astype(np.int64)
        self._rows(users, slots, days)
        order = np.lexsort((slots, buckets))
        cuts = np.flatnonzero(np.diff(buckets[order])) + 1
        out: list[DayEvidence] = []
        cfg = self.config
        for g in np.split(order, cuts):
            i, d = slots[g], int(days[g[0]])
            roll = self.day[i] != d
            if roll.any():
                self._roll(i[roll], d)
            self.today[i] += day_counts(counts[g])
            armed = self.learnt[i] >= cfg.min_days
            if not armed.any():
                continue
            ia, ga = i[armed], g[armed]
            pts = cfg.points(self.today[ia], self.level[ia])
            best = np.argmax(pts, axis=1)
            top = pts[np.arange(len(ia)), best]
            new = top - self.given[ia]
            for k in np.flatnonzero(new > 1e-6).tolist():
                a, m = int(ia[k]), int(best[k])
                out.append(DayEvidence(int(ga[k]), users[int(ga[k])], float(t_last[ga[k]]),
                                       float(new[k]), MEASURES[m], float(self.today[a, m]),
                                       float(np.expm1(self.level[a, m]))))
                self.given[a] = top[k]
        return out


def quantile_table(peers: PeerBaselines) -> np.ndarray:
    """PeerBaselines.quantile_table before its kernel (main at 30526dd)."""
    h = peers.hist + SHRINK * peers._prior()[None]
    cdf = np.cumsum(h, axis=2)
    total = cdf[:, :, -1:]
    cdf = cdf / np.maximum(total, 1e-12)
    q = np.array(QUANTILES)[None, :, None]
    flat = cdf.reshape(-1, NBINS)
    idx = np.minimum((cdf[:, None] < q[..., None]).sum(axis=3), NBINS - 1)
    rows = np.arange(len(flat)).reshape(cdf.shape[0], 1, peers.dim)
    below = np.where(idx > 0, flat[rows, np.maximum(idx - 1, 0)], 0.0)
    at = flat[rows, idx]
    frac = np.clip((q - below) / np.maximum(at - below, 1e-12), 0.0, 1.0)
    out: np.ndarray = np.where(idx > 0, (idx - 1 + frac) * BIN, 0.0) / peers.scale
    return out


def refresh(peers: PeerBaselines, bucket: int) -> None:
    """PeerBaselines.refresh before its fold kernel (main at 5b717a4), in place."""
    if not peers._pend_any:
        return
    n = len(peers._pend_weight)
    hist = peers._pend_hist.astype(np.float64)
    weight, cats = peers._pend_weight, peers._pend_cats
    rows, no_cats = peers._pend_rows, peers._pend_no_cats
    peers._pend_hist = np.zeros((0, peers.dim, NBINS), np.uint32)
    peers._pend_weight = np.zeros(0)
    peers._pend_cats = np.zeros((0, peers.cats.shape[1]))
    peers._pend_rows, peers._pend_no_cats, peers._pend_any = 0, False, False
    present = np.unique(np.append(np.flatnonzero(weight), 0))
    age = np.maximum(bucket - peers.last[present], 0)
    keep = np.exp(-age * peers._decay_per_bucket)
    peers.hist[present] *= keep[:, None, None]
    peers.weight[present] *= keep
    peers.cats[present] *= keep[:, None]
    if not no_cats and n:
        peers.cats[:n] += cats
        peers.cats[0] += cats.sum(axis=0)
    if n:
        hist[0] += hist.sum(axis=0)
        peers.hist[:n] += hist
    peers.weight[:n] += weight
    peers.weight[0] += rows
    peers._changed(present, bucket)
