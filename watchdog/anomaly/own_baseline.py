"""The account's own baseline: a running mean (float32) and variance (float16) of each window
value (part of the account's row, :mod:`watchdog.anomaly.layout`).

It must not learn the attack it should flag (an account's "usual" 1-51 customers an hour grew
to 0-943 within five hours of a sweep when every bucket was folded in as it came):

- a new account starts from its peers' baseline, worth ``PRIOR`` commits of its own, so that
  a new hire is compared with its peers from the first hour;
- a window value is learnt only once the account has been tracked for the whole window (a
  half-filled week is no usual week);
- a count far beyond both the account's usual range and its peers' 99th percentile
  (:data:`GATE` on the log scale, any count the tail score reads) is not learnt (that count
  only: a burst of failed logins does not freeze what else is learnt), and a bucket with such
  an hour is not learnt by its peers either: it is what the stage alerts on;
- every other step is clipped to ``CLIP`` standard deviations (a Huber-type update), so no
  single bucket moves the baseline far;
- the memory grows with the window: an hour's values are averaged over about 100 active
  buckets (two working days), a day's over about 400, a week's over about 1,600 (a month):
  a change sustained over days stays a change against the account's own weeks.
"""

from __future__ import annotations

import math

import numpy as np

from watchdog.anomaly.compiled import kernel
from watchdog.anomaly.vocabulary import (
    FLOOR,
    NW,
    TAIL_COLS,
    WINDOW_FEATURES,
    WINDOW_OF,
    WINDOW_SECONDS,
)

ALPHA_MIN = np.array([0.01, 0.0025, 0.000625])[WINDOW_OF]  # per window value: 1h, 24h, 7d
PRIOR = 6.0  # commits the peers' baseline counts for, for a new account
GATE = math.log(2.0)  # twice the usual range and the peers: not learnt
CLIP = 2.0  # standard deviations a step may move the mean by
VAR_MAX = 6e4  # float16 holds up to 65504
_FLOOR_VAR = FLOOR**2
# the tail's counts of the last hour (not its last 20 minutes: what the peers learn is as
# before them)
_TAIL_1H = np.array([WINDOW_FEATURES[c].endswith("_1h") for c in TAIL_COLS.tolist()])
# the kernel's constants, per window value, in the types numpy computed with (float32; NumPy 2
# keeps Python scalars weak: ``n + 1.0`` stays float32, where numba would make it float64)
_ALPHA32 = ALPHA_MIN.astype(np.float32)
_FLOOR_VAR32 = _FLOOR_VAR.astype(np.float32)
_LEARN_AFTER = WINDOW_SECONDS[WINDOW_OF].astype(np.float64)
_IS_TAIL = np.isin(np.arange(NW), TAIL_COLS)
_IS_TAIL_1H = np.zeros(NW, bool)
_IS_TAIL_1H[TAIL_COLS[_TAIL_1H]] = True
_F0, _F1, _F2 = np.float32(0.0), np.float32(1.0), np.float32(2.0)
_PRIOR32, _CLIP32, _VAR_MAX32 = np.float32(PRIOR), np.float32(CLIP), np.float32(VAR_MAX)
_N_MAX = np.float32(2**31 - 1)  # rounds to 2**31, as numpy's minimum(n + 1, 2**31 - 1) did


def excess(raw: np.ndarray, mean: np.ndarray, var: np.ndarray, p99: np.ndarray,
           cold: np.ndarray | None = None) -> np.ndarray:
    """(k, len(TAIL_COLS)): how far (log scale) each count the tail reads is above both the
    top of the account's usual range (mean + 2 sd) and its peers' 99th percentile. ``cold``
    rows (no history of their own yet) are read against their peers only."""
    own_hi = mean[:, TAIL_COLS] + 2.0 * np.sqrt(np.maximum(var[:, TAIL_COLS], 0.0))
    peer_hi = p99[:, TAIL_COLS]
    top = np.maximum(own_hi, peer_hi)
    if cold is not None and cold.any():
        top[cold] = peer_hi[cold]
    out: np.ndarray = raw[:, TAIL_COLS] - top
    return out


def beyond(raw: np.ndarray, mean: np.ndarray, var: np.ndarray, p99: np.ndarray,
           cold: np.ndarray | None = None, levels: np.ndarray | None = None,
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the largest :func:`excess` and which window value it is; with ``levels``
    (one per count the tail reads), the largest excess in units of its count's level (see
    :mod:`watchdog.anomaly.tail_levels`)."""
    return largest(excess(raw, mean, var, p99, cold), levels)


def largest(d: np.ndarray, levels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row of an :func:`excess` matrix: its largest entry (divided by its column's
    level, if given) and which window value that is."""
    if levels is not None:
        d = d / levels
    j = np.argmax(d, axis=1)
    return d[np.arange(len(d)), j], TAIL_COLS[j]


@kernel("float32(uint16)")
def half_value(h: int) -> np.float32:
    """The float32 value of float16 bits ``h`` (finite)."""
    e = (h >> 10) & 0x1F
    if e == 0:  # subnormal: a multiple of 2**-24
        v = np.float32(h & 0x3FF) * np.float32(2.0**-24)
        return -v if h & 0x8000 else v
    bits = ((h & 0x8000) << 16) | ((e + 112) << 23) | ((h & 0x3FF) << 13)
    return np.uint32(bits).view(np.float32)


@kernel("uint16(float32)")
def half_bits(x: np.float32) -> int:
    """The float16 bits of float32 ``x`` (>= 0, below 65520), rounded to nearest, ties to
    even: numpy's ``astype(np.float16)``, bit for bit."""
    if x < np.float32(2.0**-14):  # subnormal: a multiple of 2**-24 (1024 is 2**-14: normal)
        return int(np.rint(x * np.float32(2.0**24)))
    b = np.int64(np.float32(x).view(np.uint32))
    b = (b + (0x0FFF + ((b >> 13) & 1))) & 0xFFFFE000  # 23 mantissa bits to 10, ties to even
    return int((((b >> 23) - 112) << 10) | ((b >> 13) & 0x3FF))


@kernel("void(float32[:, ::1], uint16[:, ::1], int32[:, ::1], int64[::1], float64[:, ::1], "
        "float64[:, ::1], int64[::1], float64[::1], float32[:, ::1], float32[:, ::1], "
        "boolean[::1])")
def _learn(mean: np.ndarray, var: np.ndarray, meta: np.ndarray, rows: np.ndarray,
           x_win: np.ndarray, p99: np.ndarray, gids: np.ndarray, age: np.ndarray,
           own_m: np.ndarray, own_v: np.ndarray, usual: np.ndarray) -> None:
    for i in range(rows.shape[0]):
        r = rows[i]
        n = np.float32(meta[r, 0])
        alpha_n = np.float32(_F1 / (n + _F1 + _PRIOR32))
        g = gids[i]
        far_1h = False
        for c in range(x_win.shape[1]):
            m = mean[r, c]
            v = half_value(var[r, c])
            own_m[i, c] = m
            own_v[i, c] = v
            x = np.float32(x_win[i, c])
            learn = age[i] >= _LEARN_AFTER[c]
            # numpy's minimum and maximum, as written: of equal values the second
            if _IS_TAIL[c]:  # excess(): own_hi in float32, the rest in float64
                v0 = v if v > _F0 else _F0
                own_hi = np.float64(m + _F2 * np.float32(np.sqrt(v0)))
                top = own_hi if own_hi > p99[g, c] else p99[g, c]
                if np.float64(x) - top >= GATE:
                    learn = False
                    far_1h = far_1h or _IS_TAIL_1H[c]
            alpha = _F0
            if learn:
                alpha = _ALPHA32[c] if _ALPHA32[c] > alpha_n else alpha_n
            lim = _CLIP32 * np.float32(np.sqrt(v + _FLOOR_VAR32[c]))
            delta = x - m
            delta = delta if delta > -lim else -lim
            delta = delta if delta < lim else lim
            mean[r, c] = m + alpha * delta
            new_v = (_F1 - alpha) * (v + alpha * delta * delta)
            var[r, c] = half_bits(new_v if new_v < _VAR_MAX32 else _VAR_MAX32)
        usual[i] = not far_1h
        n = n + _F1
        meta[r, 0] = np.int32(n if n < _N_MAX else _N_MAX)


def learn(mean: np.ndarray, var: np.ndarray, meta: np.ndarray, x_win: np.ndarray,
          rows: np.ndarray, p99: np.ndarray, gids: np.ndarray, age: np.ndarray,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fold window values ``x_win`` (row ``i`` is account row ``rows[i]``'s; an account's rows
    in bucket order) into the accounts' baselines: ``mean`` (float32, (accounts, NW)), ``var``
    (float16) and the commits counted in ``meta[:, 0]`` (int32), in place, row after row;
    ``p99``: each peer group's 99th percentiles ((groups, NW)), ``gids`` each row's group;
    ``age``: seconds each account has been tracked at the end of the row's bucket. Returns
    each row's baseline before its own bucket (mean, variance, float32) and which rows were
    within the gate (the peers learn those only)."""
    k = len(rows)
    own_m, own_v = np.empty((k, NW), np.float32), np.empty((k, NW), np.float32)
    usual = np.empty(k, bool)
    _learn(mean, var.view(np.uint16), meta, rows, np.ascontiguousarray(x_win, np.float64),
           np.ascontiguousarray(p99, np.float64), gids, age, own_m, own_v, usual)
    return own_m, own_v, usual
