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
_ALPHA32 = ALPHA_MIN.astype(np.float32)
_FLOOR_VAR32 = _FLOOR_VAR.astype(np.float32)
_DROP, _ONE = np.uint32(13), np.uint32(1)  # float32 -> float16 mantissa: 13 bits dropped
_HALF, _KEEP = np.uint32(0x0FFF), np.uint32(0xFFFFE000)
_F16_TINY, _F16_SCALE = np.float32(2.0**-14), np.float32(2.0**24)


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
