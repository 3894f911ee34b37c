"""The row layout: how an account's state is kept as one row of a few fixed-size numpy arrays
(:data:`ROW_BYTES`, about 1.7 KB), and the two operations on it, pure and vectorised over
rows: adding a bucket's sums (:func:`update`) and reading the windows (:func:`window_values`).

Windows are rings of buckets (6 x 10 minutes, 24 x 1 hour, 7 x 1 day); distinct counts are
linear-counting sketches whose slots keep the bucket they were last set in (so one sketch
answers for any window); "never touched before" is a small Bloom bitmap. Stamps are 16-bit
bucket numbers modulo 65536; :func:`sweep` keeps stale ones from wrapping round.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from watchdog.anomaly.vocabulary import (
    BASE,
    CATEGORIES,
    LOGGED,
    NW,
    PER_DAY,
    PER_HOUR,
    SHORT_BASE,
    SHORT_BUCKETS,
    SLOTS_1H,
    SLOTS_7D,
    SLOTS_24H,
    WINDOW_BUCKETS,
    WINDOWS,
)

# counters kept per bucket: small ones saturate at 65535, large ones are float32
SMALL = ("events", "exports", "external", "offhours", "failed", "new_res", "new_cat",
         "new_src")
LARGE = ("records", "bytes", "subjects_sum")
NS, NL = len(SMALL), len(LARGE)
M_SUBJ, M_RES, M_SRC = 64, 32, 16  # linear-counting slots
SEEN_RES_BITS, SEEN_SRC_BITS = 512, 128  # "never before" Bloom bitmaps (one hash)
STALE = 40_000  # a fresh stamp's age: "never" (well beyond any window, below the wrap)

# The sketches of one account are one row of uint16 stamps: subjects, resources, sources, and
# the bucket each category was last touched in.
_SK_SUBJ, _SK_RES, _SK_SRC, _SK_CAT = 0, M_SUBJ, M_SUBJ + M_RES, M_SUBJ + M_RES + M_SRC
SK_WIDTH = _SK_CAT + len(CATEGORIES)
# "never before" bitmaps, one row of uint64 words: resources, then sources
RES_WORDS, _SRC_WORDS = SEEN_RES_BITS // 64, SEEN_SRC_BITS // 64
SEEN_WORDS = RES_WORDS + _SRC_WORDS
# the rings (1 h of 10-minute buckets, 24 h of hours, 7 days of days) side by side
RING_SLOTS = (SLOTS_1H, SLOTS_24H, SLOTS_7D)
RING_OFFS = np.concatenate(([0], np.cumsum(RING_SLOTS))).tolist()
SLOTS = int(RING_OFFS[-1])
# an account's row of uint16: ring stamps, ring counters, sketch and category stamps, seen
# categories; and of float32: the rings' large counters
U_ST1 = 0
U_SM1 = U_ST1 + SLOTS
U_SK = U_SM1 + SLOTS * NS
U_CAT = U_SK + SK_WIDTH
U_WIDTH = U_CAT + 1
F_WIDTH = SLOTS * NL
# the rings' slots: which window each belongs to, and that window's length in its units
SLOT_WINDOW = np.repeat(np.arange(len(RING_SLOTS)), RING_SLOTS)
SLOT_SPAN = np.repeat(np.array(RING_SLOTS, np.uint16), RING_SLOTS)
# a ring's stamps count its own units (buckets, hours, days)
_UNIT = (1, PER_HOUR, PER_DAY)
_SLOT_IN = np.equal.outer(np.arange(len(WINDOWS)), SLOT_WINDOW).astype(np.float32)
# per window: which sketch slots and categories count (their stamps' age in buckets)
_SPANS = np.array([WINDOW_BUCKETS[w] for w in WINDOWS], np.uint16)

# an account's state: one row of each of these arrays (name, row shape, dtype, a free row's
# fill); the own baseline (log scale) has a float32 mean (slow steps are below float16's
# resolution); meta: commits, peer group, hour of event time it was looked up; free rows are
# never idle (last seen: inf)
ROW_ARRAYS: tuple[tuple[str, tuple[int, ...], type, float], ...] = (
    ("u16", (U_WIDTH,), np.uint16, 0), ("f32", (F_WIDTH,), np.float32, 0),
    ("seen", (SEEN_WORDS,), np.uint64, 0), ("own_mean", (NW,), np.float32, 0),
    ("own_var", (NW,), np.float16, 0), ("meta", (3,), np.int32, 0),
    ("first_seen", (), np.float64, 0), ("last_seen", (), np.float64, np.inf))
ROW_BYTES = sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
                for _, shape, dt, _ in ROW_ARRAYS)


def grow_rows(owner: object, old: int, cap: int) -> None:
    """Give ``owner``'s row arrays (attributes named as in :data:`ROW_ARRAYS`) ``cap`` rows
    (``old``: how many they have). In place: a large block is remapped, not copied, and the
    old and the new array never coexist (no view of them outlives a call: none dangles)."""
    for name, shape, dtype, fill in ROW_ARRAYS:
        if not old:
            setattr(owner, name, np.full((cap, *shape), fill, dtype=dtype))
            continue
        arr: np.ndarray = getattr(owner, name)
        arr.resize((cap, *shape), refcheck=False)
        arr[old:] = fill


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
    flat[:, _NWIN:] = np.matmul(recent[:, None, :],
                                small_r[:, :SLOTS_1H, _FROM_SHORT].astype(np.float32))[:, 0]
    flat[:, LOGGED] = np.log1p(flat[:, LOGGED])
    return flat


def sweep(u: np.ndarray, b: int) -> None:
    """Re-stamp slots of state rows ``u`` older than any window as "never", before their age
    wraps (``b``: the current bucket)."""
    groups = [(u[:, U_SK:U_CAT], b, 2 * WINDOW_BUCKETS["7d"])]
    groups += [(u[:, U_ST1 + lo:U_ST1 + hi], b // unit, 2 * n)
               for lo, hi, unit, n in zip(RING_OFFS[:-1], RING_OFFS[1:], _UNIT, RING_SLOTS,
                                          strict=True)]
    for st, now, limit in groups:
        age = (np.uint16(now & 0xFFFF) - st).astype(np.int64) & 0xFFFF
        st[age > limit] = (now - STALE) & 0xFFFF


def fresh_row(u: np.ndarray, bucket: int) -> None:
    """A new account's row of uint16 ``u`` (zeroed): every stamp "never" as of ``bucket``."""
    u[U_SK:U_CAT] = (bucket - STALE) & 0xFFFF
    for lo, hi, unit in zip(RING_OFFS[:-1], RING_OFFS[1:], _UNIT, strict=True):
        u[U_ST1 + lo:U_ST1 + hi] = (bucket // unit - STALE) & 0xFFFF


def stamps(bks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of buckets ``bks`` (of one hour): its bucket, hour and day stamps, and its
    slot in each ring."""
    k = len(bks)
    h = int(bks[0]) // PER_HOUR
    d = int(bks[0]) // PER_DAY
    now = np.empty((k, 3), np.uint16)
    now[:, 0] = (bks & 0xFFFF).astype(np.uint16)
    now[:, 1] = h & 0xFFFF
    now[:, 2] = d & 0xFFFF
    ring_cols = np.empty((k, 3), np.intp)
    ring_cols[:, 0] = bks % SLOTS_1H
    ring_cols[:, 1] = RING_OFFS[1] + h % SLOTS_24H
    ring_cols[:, 2] = RING_OFFS[2] + d % SLOTS_7D
    return now, ring_cols


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
