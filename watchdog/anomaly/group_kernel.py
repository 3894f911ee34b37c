"""The reduction's group-by, compiled: kept events' columns to one row per account and bucket
in one pass over the events (:func:`reduce_groups`), where numpy took a pass per column (and a
bool matrix of 640 bits per row for the never-before bitmaps).

Exactly numpy's results: counters are integers; the large counters are sums of the
contract's non-negative integers (records, bytes, subjects), exact in float64 in any order
below 2**53; bit-ors and the latest time do not depend on the order.
"""

from __future__ import annotations

import numpy as np

from watchdog.anomaly.compiled import kernel
from watchdog.anomaly.layout import RES_WORDS

_U1, _U63 = np.uint64(1), np.uint64(63)


@kernel("void(int64[::1], int64[::1], int64[::1], boolean[::1], int64[::1], int64[::1], "
        "int64[::1], uint64[::1], float64[::1], float64[::1], float64[::1], float64[::1], "
        "int64[:, ::1], float64[:, ::1], int64[::1], uint64[::1], uint64[:, ::1], "
        "float64[::1])")
def reduce_groups(order: np.ndarray, heads: np.ndarray, flags: np.ndarray, off: np.ndarray,
                  res_bit: np.ndarray, src_bit: np.ndarray, cats: np.ndarray,
                  subj: np.ndarray, records: np.ndarray, nbytes: np.ndarray,
                  counts: np.ndarray, ts: np.ndarray, small: np.ndarray, large: np.ndarray,
                  cats_out: np.ndarray, subj_out: np.ndarray, bloom: np.ndarray,
                  t_last: np.ndarray) -> None:
    """Group ``k`` is events ``order[heads[k]:heads[k + 1]]``; its counters go to ``small[k]``
    (events, exports, sent outside, off hours, failed logins; the rest is left as given),
    ``large[k]`` (records, bytes, subjects), its bits to ``cats_out[k]``, ``subj_out[k]``,
    ``bloom[k]`` (resource bits, then source bits), its latest time to ``t_last[k]``. The
    outputs come zeroed. Per event: ``flags`` (1 an export, 2 a failed login, 4 sent outside),
    ``off`` (off hours), never-before bits (-1: none), category and subject slot bits."""
    n = order.shape[0]
    g = heads.shape[0]
    for k in range(g):
        hi = heads[k + 1] if k + 1 < g else n
        t = -np.inf
        for p in range(heads[k], hi):
            e = order[p]
            f = flags[e]
            small[k, 0] += 1
            small[k, 1] += f & 1
            small[k, 2] += (f >> 2) & 1
            small[k, 3] += 1 if off[e] else 0
            small[k, 4] += (f >> 1) & 1
            large[k, 0] += records[e]
            large[k, 1] += nbytes[e]
            large[k, 2] += counts[e]
            cats_out[k] |= cats[e]
            subj_out[k] |= subj[e]
            b = res_bit[e]
            if b >= 0:
                bloom[k, b >> 6] |= _U1 << (np.uint64(b) & _U63)
            b = src_bit[e]
            if b >= 0:
                bloom[k, RES_WORDS + (b >> 6)] |= _U1 << (np.uint64(b) & _U63)
            t = ts[e] if ts[e] > t else t
        t_last[k] = t
