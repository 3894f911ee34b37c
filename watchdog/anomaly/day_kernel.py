"""The day scale's per-row steps, compiled (:mod:`watchdog.anomaly.day_baseline`): a bucket's
counts added to the account's day so far (:func:`accumulate`) and the evidence it gives
(:func:`give`), one pass over a day's rows where numpy took a dozen passes per bucket.

The transcendental steps stay numpy's, between the two passes (``expm1``, ``log`` in
:meth:`DayConfig.points`, ``log1p`` when a day is folded in): numba calls libm's, which
differs from numpy's in the last bit. What is here is float32 additions, comparisons and
numpy's ``argmax`` (the first largest; a NaN wins), step for step.
"""

from __future__ import annotations

import numpy as np

from watchdog.anomaly.compiled import kernel

_EPS = 1e-6  # new points below this are no evidence (float64, as numpy compared)


@kernel("void(float32[:, ::1], uint16[::1], int64[::1], float32[:, ::1], int64, "
        "float32[:, ::1], boolean[::1])")
def accumulate(today: np.ndarray, learnt: np.ndarray, slots: np.ndarray, counts: np.ndarray,
               min_days: int, snap: np.ndarray, armed: np.ndarray) -> None:
    """Row by row, in order: ``counts[j]`` added to ``today[slots[j]]`` (float32); the
    account's day so far after it in ``snap[j]``, and whether the account gives evidence
    (``learnt`` days at least ``min_days``) in ``armed[j]``."""
    for j in range(slots.shape[0]):
        a = slots[j]
        for m in range(today.shape[1]):
            v = today[a, m] + counts[j, m]
            today[a, m] = v
            snap[j, m] = v
        armed[j] = np.int64(learnt[a]) >= min_days


@kernel("void(float32[::1], int64[::1], float64[:, ::1], int64[::1], float64[::1], "
        "boolean[::1])")
def give(given: np.ndarray, slots: np.ndarray, points: np.ndarray, best: np.ndarray,
         new: np.ndarray, taken: np.ndarray) -> None:
    """Row by row, in order: the measure with the most ``points[j]`` (``best[j]``), what it
    adds to the points the account's day has given so far (``new[j]``, float64), and if that
    is above 1e-6 (``taken[j]``) the day's points become it (``given``, float32)."""
    for j in range(slots.shape[0]):
        b = 0
        top = points[j, 0]
        for m in range(1, points.shape[1]):
            if np.isnan(top):
                break
            v = points[j, m]
            if v > top or np.isnan(v):
                b = m
                top = v
        a = slots[j]
        d = top - np.float64(given[a])
        best[j] = b
        new[j] = d
        taken[j] = d > _EPS
        if d > _EPS:
            given[a] = np.float32(top)
