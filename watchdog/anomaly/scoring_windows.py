"""Scoring windows committed in parts: the daemon commits every tick, so one window's
candidates may sit in several batches; the stage scores each account's latest."""

from __future__ import annotations

import numpy as np

from watchdog.anomaly.batch import FeatureBatch

Due = list[tuple[FeatureBatch, np.ndarray, np.ndarray]]


def split_windows(due: Due) -> bool:
    """Whether a scoring window has candidates in more than one batch (committed in parts:
    the daemon's ticks; an hour's commit holds whole windows)."""
    wins = [np.unique(win) for _, _, win in due]
    every = np.concatenate(wins)
    return len(np.unique(every)) < len(every)


def latest_per_window(due: Due) -> Due:
    """A window committed in parts (the daemon's ticks) has candidates in several batches:
    keep each account's latest (the later batch's)."""
    last: dict[tuple[str, int], tuple[int, int]] = {}
    for bi, (b, idx, win) in enumerate(due):
        users = b.users
        for pos, (j, w) in enumerate(zip(idx.tolist(), win.tolist(), strict=True)):
            last[users[j], w] = (bi, pos)
    out = []
    for bi, (b, idx, win) in enumerate(due):
        keep = np.zeros(len(idx), bool)
        users = b.users
        for pos, (j, w) in enumerate(zip(idx.tolist(), win.tolist(), strict=True)):
            keep[pos] = last[users[j], w] == (bi, pos)
        if keep.any():
            out.append((b, idx[keep], win[keep]))
    return out
