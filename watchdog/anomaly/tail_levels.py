"""Per-count levels of the tail score, calibrated on held-out baseline rows.

The tail score reads how far each count (events, customers, exports, ... in the last hour,
24 hours, 7 days; events and exports in the last 20 minutes) is above both the top of the
account's own usual range and its peers' 99th percentile
(:func:`watchdog.anomaly.own_baseline.excess`, log scale). One threshold for all of them is
set by the noisiest: one report touching 250 customers an hour is ordinary for
some roles, so "customers in the last hour" needed 7x beyond the usual ranges before it was
rare in a held-out fortnight, while "events in the last hour" was never 1.3x beyond them,
and a single threshold of 10x let a 20x burst of reads pass. Each count therefore gets its
own **level**: the excess its held-out rows reach as rarely as the tail's share of the
false-alert target allows; the row's tail score is its largest excess in units of its
count's level, and 1 alerts.

- Each count's level comes from its own held-out block maxima (one per account-hour, about
  one alert each): the empirical quantile when the target allows 20 alerts or more on the
  rows, else a generalised Pareto fit of the highest blocks, never below what the rows show.
- The levels are then scaled up together until the largest of them (any count) stays within
  the same share (a row may be rare in more than one count).
- Every level is at least ``LEVEL_FLOOR`` (a small organisation's fortnight has few rows: its
  fitted level must not come from noise) and at most ``LEVEL_MAX`` (10x beyond the usual
  ranges always alerts, however noisy the count's baseline).

Pure: numpy arithmetic only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from watchdog.anomaly.calibration import gpd_excess
from watchdog.anomaly.vocabulary import TAIL_COLS, WINDOW_FEATURES

LEVEL_MAX = math.log(10.0)  # 10x beyond the account's and its peers' usual ranges
# 1.5x beyond both ranges: under it a count is within what an ordinary busy hour shows (the
# top of the account's own range is already its mean + 2 sd, about 3x its usual hour)
LEVEL_FLOOR = math.log(1.5)
# The counts whose levels are calibrated: actions in the last hour and the last 20 minutes
# (events, exports), what a burst multiplies. The others stay at LEVEL_MAX: what one
# ordinary event may carry (customers, records, bytes: a report touches hundreds) and what
# is new (addresses, resources) have tails a fortnight does not show (a 100-account
# fortnight put customers an hour at 2.3x; a later month showed 5x-8x, 29 false alerts); the
# 24-hour and 7-day counts are read in the first fortnight while the week's own baseline
# still fills (their change over days is the day-level detector's).
CALIBRATED = ("events_1h", "exports_1h", "events_20m", "exports_20m")
SHORT = np.isin(np.asarray(WINDOW_FEATURES)[TAIL_COLS], CALIBRATED)


def block_maxima(values: np.ndarray, users: Sequence[str], times: np.ndarray,
                 cooldown: float = 3600.0) -> np.ndarray:
    """(blocks, columns): the largest value of each column per account and cool-down block
    (an account-hour above a threshold is about one alert)."""
    if not len(values):
        return np.zeros((0, *values.shape[1:]))
    _, uid = np.unique(np.asarray(users), return_inverse=True)
    block = (np.asarray(times) // cooldown).astype(np.int64)
    key = uid.astype(np.int64) * (int(block.max()) - int(block.min()) + 1) + block - block.min()
    order = np.argsort(key, kind="stable")
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    out: np.ndarray = np.maximum.reduceat(values[order], starts, axis=0)
    return out


def level_for(blocks: np.ndarray, allowed: float) -> float:
    """The lowest value that at most ``allowed`` of ``blocks`` (block maxima) exceed: the
    empirical quantile when ``allowed`` is 20 or more, else a generalised Pareto fit of the
    highest blocks, never below the ``allowed``-th highest block."""
    b = np.sort(np.asarray(blocks, dtype=np.float64))[::-1]
    if len(b) == 0:
        return LEVEL_FLOOR
    k = int(allowed)
    shown = float(np.nextafter(b[k], np.inf)) if k < len(b) else float(b[-1])
    if allowed >= 20 or len(b) < 10:
        return shown
    n_u = min(max(30, len(b) // 50), 1000, len(b) - 1)
    u = float(b[n_u])
    return max(u + gpd_excess(b[:n_u] - u, n_u / max(allowed, 1e-6)), shown)


def calibrate_levels(excess: np.ndarray, users: Sequence[str], times: np.ndarray, *,
                     allowed: float, cooldown: float = 3600.0,
                     floor: float = LEVEL_FLOOR, ceiling: float = LEVEL_MAX,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(levels, as calibrated before the floor and ceiling): one per column of ``excess``
    (held-out rows, (k, counts)), for at most ``allowed`` tail alerts on these rows."""
    blocks = block_maxima(excess, users, times, cooldown)
    raw = np.array([level_for(blocks[:, j], allowed) for j in range(excess.shape[1])])
    levels = np.clip(raw, floor, ceiling)
    # a row rare in several counts: scale the levels together until no more than the
    # allowance of held-out blocks reach 1 in any count (what the rows show, no second
    # extrapolation: each level is already extrapolated); counts at the ceiling are left
    # out (beyond it always alerts, whatever the rows show)
    below = levels < ceiling
    z = (np.sort((blocks[:, below] / levels[below]).max(axis=1))[::-1]
         if len(blocks) and below.any() else np.zeros(0))
    k = int(allowed)
    scale = max(float(np.nextafter(z[k], np.inf)) if k < len(z) else 1.0, 1.0)
    return np.clip(levels * scale, floor, ceiling), raw * scale


_POS = {int(c): i for i, c in enumerate(TAIL_COLS.tolist())}  # window value -> its level


def times_beyond(levels: np.ndarray | None, col: int | None, deviation: float) -> float:
    """A tail deviation (units of the level of window value ``col``) back on the log scale."""
    if levels is None or col is None:
        return deviation
    return deviation * float(levels[_POS[col]])


def alerting_times(levels: np.ndarray | None, threshold: float, col: int | None,
                   ) -> float | None:
    """How many times beyond its usual ranges window value ``col`` alerts by the tail score
    (a model without levels: its one tail threshold); None without one."""
    if not math.isfinite(threshold) or (levels is not None and col is None):
        return None
    return round(math.exp(times_beyond(levels, col, threshold)), 2)
