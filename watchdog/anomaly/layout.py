"""The row layout: how an account's state is kept as one row of a few fixed-size numpy arrays
(:data:`ROW_BYTES`, about 1.7 KB). Adding a bucket's sums to a row and reading its windows is
:mod:`~watchdog.anomaly.ring_kernel`'s (compiled, one pass per row); here: allocating rows,
a new row, the stamps of a bucket, and the sweep of stale stamps.

Windows are rings of buckets (6 x 10 minutes, 24 x 1 hour, 7 x 1 day); distinct counts are
linear-counting sketches whose slots keep the bucket they were last set in (so one sketch
answers for any window); "never touched before" is a small Bloom bitmap. Stamps are 16-bit
bucket numbers modulo 65536; :func:`sweep` keeps stale ones from wrapping round.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from watchdog.anomaly.stage_state import StateError, pack, unpack
from watchdog.anomaly.vocabulary import (
    CATEGORIES,
    NW,
    PER_DAY,
    PER_HOUR,
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
# per window: which sketch slots and categories count (their stamps' age in buckets)
SPANS = np.array([WINDOW_BUCKETS[w] for w in WINDOWS], np.uint16)

# an account's state: one row of each of these arrays (name, row shape, dtype, a free row's
# fill); the own baseline (log scale) has a float32 mean (slow steps are below float16's
# resolution); meta: commits, peer group, hour of event time it was looked up; free rows are
# never idle (last seen: inf); the event times over which the peer group looked up holds
# (peer_groups.DirectoryGroups; none: empty)
ROW_ARRAYS: tuple[tuple[str, tuple[int, ...], type, float], ...] = (
    ("u16", (U_WIDTH,), np.uint16, 0), ("f32", (F_WIDTH,), np.float32, 0),
    ("seen", (SEEN_WORDS,), np.uint64, 0), ("own_mean", (NW,), np.float32, 0),
    ("own_var", (NW,), np.float16, 0), ("meta", (3,), np.int32, 0),
    ("first_seen", (), np.float64, 0), ("last_seen", (), np.float64, np.inf),
    ("group_span", (2,), np.float64, np.nan))
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


def rows_state(owner: object) -> list[Any]:
    """``owner``'s row arrays as plain data (watchdog.anomaly.stage_state), in the order of
    :data:`ROW_ARRAYS`."""
    return [pack(getattr(owner, name)) for name, _, _, _ in ROW_ARRAYS]


def load_rows(doc: Any, cap: int) -> dict[str, np.ndarray]:
    """:func:`rows_state`'s arrays back by name, each of ``cap`` rows (:class:`StateError` if
    they do not fit the layout)."""
    if not isinstance(doc, list) or len(doc) != len(ROW_ARRAYS):
        raise StateError("account rows: arrays do not fit the layout")
    return {name: unpack(a, dtype, (cap, *shape), f"account rows ({name})")
            for a, (name, shape, dtype, _) in zip(doc, ROW_ARRAYS, strict=True)}


def _linear_count(empty: np.ndarray, m: int) -> np.ndarray:
    """Distinct items from the number of empty slots (inf when saturated)."""
    with np.errstate(divide="ignore"):
        return np.where(empty > 0, -m * np.log(np.maximum(empty, 1) / m), np.inf)


# _linear_count of every possible number of empty slots, for the three sketches side by side:
# the estimate of sketch i with e empty slots is LC_TABLE[LC_OFFSETS[i] + e]
LC_TABLE = np.concatenate([_linear_count(np.arange(m + 1, dtype=np.float64), m)
                            for m in (M_SUBJ, M_RES, M_SRC)])
LC_OFFSETS = np.array([0, M_SUBJ + 1, M_SUBJ + M_RES + 2])


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


