"""The hourly commit's state update and window read, one compiled pass per row
(:func:`advance_and_read`): the row's bucket is added to its account's state row (rings,
sketch stamps, never-before bits: :mod:`~watchdog.anomaly.layout`), in place, and the
account's windows are read from that state as of the end of the bucket.

Rows go in the order given, so an account's rows must come in bucket order (rank by rank, or
account by account: either is the same). The arithmetic is numpy's, step for step (the golden
test compares every value): counters summed exactly; the large counters summed in float32
slot after slot, as OpenBLAS's ``matmul`` sums them; a ring slot's large counter as
``float32(float64(old) + new)``. ``log1p`` is left to numpy (numba calls libm's, which differs
from numpy's in the last bit).
"""

from __future__ import annotations

import numpy as np

from watchdog.anomaly.compiled import kernel
from watchdog.anomaly.layout import (
    LARGE,
    LC_OFFSETS,
    LC_TABLE,
    M_RES,
    M_SRC,
    M_SUBJ,
    NL,
    NS,
    RES_WORDS,
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
)
from watchdog.anomaly.vocabulary import BASE, SHORT_BASE, SHORT_BUCKETS, SLOTS_1H, WINDOWS

# numba types mixed signed/unsigned integer arithmetic as float: every constant that meets a
# uint64 is a uint64
_U0, _U1 = np.uint64(0), np.uint64(1)
_U16, _U32, _U48 = np.uint64(16), np.uint64(32), np.uint64(48)
_LOW16, _LOW32 = np.uint64(0xFFFF), np.uint64(0xFFFFFFFF)
_M1, _M2 = np.uint64(0x5555555555555555), np.uint64(0x3333333333333333)
_M4, _H01 = np.uint64(0x0F0F0F0F0F0F0F0F), np.uint64(0x0101010101010101)
_S1, _S2, _S4, _S56 = np.uint64(1), np.uint64(2), np.uint64(4), np.uint64(56)

_NB, _NWIN = len(BASE), len(WINDOWS) * len(BASE)
_SLOT_WINDOW = SLOT_WINDOW.astype(np.int64)
_SLOT_SPAN = SLOT_SPAN.astype(np.int64)
# window value column <- small counter, large counter
_FS_B = np.array([BASE.index(n) for n in (
    "events", "exports", "external", "failed_logins", "new_resources", "new_categories",
    "new_sources")], np.int64)
_FS_S = np.array([SMALL.index(n) for n in (
    "events", "exports", "external", "failed", "new_res", "new_cat", "new_src")], np.int64)
_FL_B = np.array([BASE.index("records"), BASE.index("bytes")], np.int64)
_FL_L = np.array([LARGE.index("records"), LARGE.index("bytes")], np.int64)
_SUBJ_SUM = LARGE.index("subjects_sum")
_OFFHOURS = SMALL.index("offhours")
_B_SUBJ, _B_RES, _B_SRC = BASE.index("subjects"), BASE.index("resources"), BASE.index("sources")
_B_SHARE, _B_CATS = BASE.index("offhours_share"), BASE.index("categories")
_B_RARE = BASE.index("rare_categories")
_FROM_SHORT = np.array([SMALL.index(n) for n in SHORT_BASE], np.int64)
_LC_TABLE = LC_TABLE.astype(np.float64)
_LC_SUBJ, _LC_RES, _LC_SRC = (int(o) for o in LC_OFFSETS)
_NEW_RES, _NEW_CAT, _NEW_SRC = SMALL.index("new_res"), SMALL.index("new_cat"), SMALL.index(
    "new_src")
_SK_RES, _SK_SRC, _SK_CAT = M_SUBJ, M_SUBJ + M_RES, M_SUBJ + M_RES + M_SRC
_SPAN0, _SPAN1, _SPAN2 = (int(x) for x in SPANS)
_SK_LO = np.array([0, _SK_RES, _SK_SRC, _SK_CAT], np.int64)  # subjects, resources, sources
_WORD = np.uint64((1 << (SK_WIDTH - M_SUBJ)) - 1)  # the sketch bits after the subjects'


@kernel("int64(uint64)")
def popcount(x: np.uint64) -> int:
    """Bits set in ``x``."""
    x = x - ((x >> _S1) & _M1)
    x = (x & _M2) + ((x >> _S2) & _M2)
    x = (x + (x >> _S4)) & _M4
    return int((x * _H01) >> _S56)


@kernel("void(uint16[:, ::1], float32[:, ::1], uint64[:, ::1], int64[::1], int64[:, ::1], "
        "float64[:, ::1], uint64[:, ::1], int64[::1], uint64[::1], uint16[:, ::1], "
        "int64[:, ::1], int64[::1], float64[:, ::1])")
def advance_and_read(u16: np.ndarray, f32: np.ndarray, seen: np.ndarray, rows: np.ndarray,
                     small: np.ndarray, large: np.ndarray, bloom: np.ndarray,
                     cats: np.ndarray, subj: np.ndarray, now: np.ndarray,
                     ring_cols: np.ndarray, rare: np.ndarray, out: np.ndarray) -> None:
    """Per row ``i``, in order: add its bucket's sums (``small``, ``large``: counters;
    ``bloom``: resource and source bits; ``cats``: category bits; ``subj``: subject sketch
    slots) to the state row ``rows[i]`` of ``u16``, ``f32``, ``seen`` (``now[i]``: its
    bucket, hour and day stamps; ``ring_cols[i]``: its slot in each ring; see
    ``layout.stamps``), then write its window values before ``log1p`` into ``out[i]``
    (``rare[i]``: its peers' rare categories)."""
    sm = np.empty(NS, np.int64)
    ssum = np.empty((3, NS), np.int64)
    lsum = np.empty((3, NL), np.float32)
    cnt = np.empty((3, 3), np.int64)
    catm = np.empty(3, np.uint64)
    for i in range(rows.shape[0]):
        r = rows[i]
        u = u16[r]
        f = f32[r]
        sn = seen[r]
        # never-before: resources, sources, categories
        fresh_res = 0
        fresh_src = 0
        r64 = _U0
        s64 = _U0
        for w in range(SEEN_WORDS):
            b = bloom[i, w]
            if w < RES_WORDS:
                fresh_res += popcount(b & ~sn[w])
                r64 |= b
            else:
                fresh_src += popcount(b & ~sn[w])
                s64 |= b
            sn[w] = sn[w] | b
        c = cats[i]
        seen_c = np.int64(u[U_CAT])
        for q in range(NS):
            sm[q] = small[i, q]
        sm[_NEW_RES] = fresh_res
        sm[_NEW_SRC] = fresh_src
        sm[_NEW_CAT] = popcount(np.uint64(c & ~seen_c))
        u[U_CAT] = seen_c | c
        # the rings (1 h, 24 h, 7 d): a slot still holding an older bucket is cleared first
        for ring in range(3):
            s = ring_cols[i, ring]
            stamp = now[i, ring]
            same = u[U_ST1 + s] == stamp
            u[U_ST1 + s] = stamp
            at = U_SM1 + s * NS
            for q in range(NS):
                v = (np.int64(u[at + q]) if same else 0) + sm[q]
                u[at + q] = v if v < 0xFFFF else 0xFFFF
            at = s * NL
            for q in range(NL):
                old = np.float64(f[at + q]) if same else 0.0
                f[at + q] = np.float32(old + large[i, q])
        # sketch slots remember the bucket they were last set in: subjects by their bits;
        # resources, sources by the low bits of the bitmaps' bits; categories
        now0 = now[i, 0]
        # (only the bits set are visited: a row sets a few of the 126)
        b = subj[i]
        while b:
            low = b & (~b + _U1)
            u[U_SK + popcount(low - _U1)] = now0
            b ^= low
        s32 = s64 | (s64 >> _U32)
        b = ((((r64 | (r64 >> _U32)) & _LOW32) | (((s32 | (s32 >> _U16)) & _LOW16) << _U32)
              | (np.uint64(c) << _U48)) & _WORD)
        while b:
            low = b & (~b + _U1)
            u[U_SK + M_SUBJ + popcount(low - _U1)] = now0
            b ^= low

        # the windows as of the end of the bucket: ring slots within each window
        ssum[:] = 0
        lsum[:] = 0
        for s in range(SLOTS):
            w = _SLOT_WINDOW[s]
            valid = ((np.int64(now[i, w]) - np.int64(u[U_ST1 + s])) & 0xFFFF) < _SLOT_SPAN[s]
            vf = np.float32(1.0) if valid else np.float32(0.0)
            at = U_SM1 + s * NS
            if valid:
                for q in range(NS):
                    ssum[w, q] += u[at + q]
            at = s * NL
            for q in range(NL):
                lsum[w, q] = lsum[w, q] + vf * f[at + q]
        # sketch slots and categories set within each window (branch-free counts: the
        # compiler vectorises them)
        for q in range(3):
            lo, hi = _SK_LO[q], _SK_LO[q + 1]
            c0, c1, c2 = np.int64(0), np.int64(0), np.int64(0)
            for j in range(lo, hi):
                age = (np.int64(now0) - np.int64(u[U_SK + j])) & 0xFFFF
                c0 += np.int64(age < _SPAN0)
                c1 += np.int64(age < _SPAN1)
                c2 += np.int64(age < _SPAN2)
            cnt[0, q], cnt[1, q], cnt[2, q] = c0, c1, c2
        m0, m1, m2 = _U0, _U0, _U0
        for j in range(_SK_CAT, SK_WIDTH):
            age = (np.int64(now0) - np.int64(u[U_SK + j])) & 0xFFFF
            bit = _U1 << np.uint64(j - _SK_CAT)
            m0 |= bit if age < _SPAN0 else _U0
            m1 |= bit if age < _SPAN1 else _U0
            m2 |= bit if age < _SPAN2 else _U0
        catm[0], catm[1], catm[2] = m0, m1, m2
        rare_i = np.uint64(rare[i])
        for w in range(3):
            base = w * _NB
            events = np.float64(ssum[w, 0])
            for q in range(_FS_B.shape[0]):
                out[i, base + _FS_B[q]] = np.float64(ssum[w, _FS_S[q]])
            for q in range(_FL_B.shape[0]):
                out[i, base + _FL_B[q]] = np.float64(lsum[w, _FL_L[q]])
            # subjects: at most the subjects counted; a saturated sketch cannot count further
            # than one resource or source per event
            # (numpy's minimum: of equal values the second, as -0.0, the estimate of an
            # empty sketch)
            a = np.float64(lsum[w, _SUBJ_SUM])
            b = _LC_TABLE[_LC_SUBJ + M_SUBJ - cnt[w, 0]]
            out[i, base + _B_SUBJ] = a if a < b else b
            b = _LC_TABLE[_LC_RES + M_RES - cnt[w, 1]]
            out[i, base + _B_RES] = events if events < b else b
            b = _LC_TABLE[_LC_SRC + M_SRC - cnt[w, 2]]
            out[i, base + _B_SRC] = events if events < b else b
            out[i, base + _B_SHARE] = ssum[w, _OFFHOURS] / events if events > 0 else 0.0
            out[i, base + _B_CATS] = popcount(catm[w])
            out[i, base + _B_RARE] = popcount(catm[w] & rare_i)
        # the last 20 minutes: the hour ring's slots of the last SHORT_BUCKETS buckets
        for q in range(_FROM_SHORT.shape[0]):
            total = 0
            for s in range(SLOTS_1H):
                if ((np.int64(now0) - np.int64(u[U_ST1 + s])) & 0xFFFF) < SHORT_BUCKETS:
                    total += u[U_SM1 + s * NS + _FROM_SHORT[q]]
            out[i, _NWIN + q] = np.float64(total)
