"""The rows to score: their model inputs and tail deviation, one compiled pass per row
(:func:`score_inputs`), read straight from a batch's arrays where numpy gathered a dozen
(rows x columns) arrays first (~2 us per scored row).

The arithmetic is :meth:`FeatureBatch.scoring`'s numpy, step for step (the golden test
compares the model inputs and tail deviations): float64 against the peers; against the own
baseline its float32 mean and variance promoted; the top of the own usual range in float32;
numpy's maximum (of equal values the second), argmax (the first largest).
"""

from __future__ import annotations

import numpy as np

from watchdog.anomaly.compiled import kernel

_F0, _F2 = np.float32(0.0), np.float32(2.0)


@kernel("void(int64[::1], float64[:, ::1], float32[:, ::1], float32[:, ::1], "
        "float64[:, :, ::1], int64[::1], boolean[::1], int64[::1], int64[::1], float64[::1], "
        "int64[::1], int64[::1], float64[::1], int64[::1], int64[::1], boolean[::1], "
        "float64[::1], boolean, float32[:, ::1], float64[::1], int64[::1])")
def score_inputs(idx: np.ndarray, raw: np.ndarray, own_m: np.ndarray, own_v: np.ndarray,
                 quantiles: np.ndarray, gids: np.ndarray, warm: np.ndarray,
                 peer_j: np.ndarray, peer_w: np.ndarray, floor_p: np.ndarray,
                 self_j: np.ndarray, self_w: np.ndarray, floor_s: np.ndarray,
                 novel_j: np.ndarray, tail_cols: np.ndarray, novel: np.ndarray,
                 levels: np.ndarray, has_levels: bool, x: np.ndarray, d: np.ndarray,
                 col: np.ndarray) -> None:
    """Per row ``idx[r]`` of a batch (window values ``raw``, own baseline ``own_m``,
    ``own_v``, peer group ``gids`` into ``quantiles`` (groups, p10/p50/p99, NW), ``warm``):
    model input ``x[r]`` (column ``peer_j[q]`` from window value ``peer_w[q]`` against the
    peers, ``self_j`` / ``self_w`` against its own baseline; a cold row's own and
    ``novel_j`` inputs 0), and its largest excess over the tail's counts ``tail_cols`` (a
    cold row's ``novel`` window values read as 0, against its peers only; in units of
    ``levels`` if ``has_levels``) in ``d[r]``, the window value in ``col[r]``."""
    for r in range(idx.shape[0]):
        i = idx[r]
        g = gids[i]
        cold = not warm[i]
        for q in range(peer_j.shape[0]):
            w = peer_w[q]
            p50 = quantiles[g, 1, w]
            p99 = quantiles[g, 2, w]
            a = raw[i, w] - p99
            a = a if a > 0.0 else 0.0
            x[r, peer_j[q]] = np.float32(a / (p99 - p50 + floor_p[q]))
        for q in range(self_j.shape[0]):
            w = self_w[q]
            a = ((raw[i, w] - np.float64(own_m[i, w]))
                 / np.sqrt(np.float64(own_v[i, w]) + floor_s[q]) - 1.0)
            x[r, self_j[q]] = 0.0 if cold else np.float32(a if a > 0.0 else 0.0)
        if cold:
            for q in range(novel_j.shape[0]):
                x[r, novel_j[q]] = 0.0
        best = 0.0
        at = 0
        for t in range(tail_cols.shape[0]):
            c = tail_cols[t]
            v = 0.0 if cold and novel[c] else raw[i, c]
            top = quantiles[g, 2, c]
            if not cold:
                var = own_v[i, c]
                own_hi = np.float64(own_m[i, c] + _F2 * np.float32(np.sqrt(
                    var if var > _F0 else _F0)))
                top = own_hi if own_hi > top else top
            e = v - top
            if has_levels:
                e = e / levels[t]
            if t == 0 or e > best:
                best = e
                at = t
        d[r] = best
        col[r] = tail_cols[at]
