"""The account's own baseline: a running mean and variance of each window value (a plain
mean for the first commits, then an EWMA), kept as float16 between buckets (part of the
account's row, :mod:`watchdog.anomaly.layout`). A new account starts from its peers'."""

from __future__ import annotations

import numpy as np

from watchdog.anomaly.vocabulary import NW

ALPHA_MIN = 0.01  # own baseline: running mean for 100 commits, then EWMA with this weight
VAR_MAX = 6e4  # float16 holds up to 65504


def learn(own: np.ndarray, counts: np.ndarray, x_win: np.ndarray, acct: np.ndarray,
          offs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fold window values ``x_win`` (rank-major rows: rank ``r`` is ``offs[r]:offs[r + 1]``,
    of accounts ``acct``) into accounts' baselines ``own`` ((accounts, 2 * NW) float16: mean,
    variance; updated in place) after ``counts`` commits each. Returns each row's baseline
    before its own bucket (mean, variance) and the accounts' new commit counts."""
    k = len(x_win)
    cur_m = own[:, :NW].astype(np.float64)
    cur_v = own[:, NW:].astype(np.float64)
    cur_n = counts.astype(np.float64)
    own_m, own_v = np.empty((k, NW)), np.empty((k, NW))
    for r in range(len(offs) - 1):
        lo, hi = int(offs[r]), int(offs[r + 1])
        a_i = acct[lo:hi]
        m, v, n = cur_m[a_i], cur_v[a_i], cur_n[a_i]
        own_m[lo:hi], own_v[lo:hi] = m, v
        alpha = np.maximum(ALPHA_MIN, 1.0 / (n + 1.0))[:, None]
        delta = x_win[lo:hi] - m
        cur_m[a_i] = (m + alpha * delta).astype(np.float16)
        cur_v[a_i] = np.minimum((1 - alpha) * (v + alpha * delta * delta),
                                VAR_MAX).astype(np.float16)
        cur_n[a_i] = np.minimum(n + 1, 2**31 - 1)
    own[:, :NW] = cur_m
    own[:, NW:] = cur_v
    return own_m, own_v, cur_n
