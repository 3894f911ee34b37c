"""Periodic retraining: which rows a rolling baseline may learn from.

A model retrained on everything it saw would learn an insider's behaviour as normal. The rows
of a rolling baseline are therefore the last ``days`` of event time before ``now``, minus the
windows around every alert raised for the same account: the day of behaviour that led up to
the alert (the 24-hour window the features look at) and the cool-down after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from watchdog.anomaly.labels import Labels


def select_training_rows(
    users: Sequence[str],
    times: np.ndarray,
    alerts: Mapping[str, Sequence[float]],
    *,
    now: float | None,
    days: float = 28.0,
    before: float = 24 * 3600.0,
    after: float = 3600.0,
) -> np.ndarray:
    """Boolean mask over rows (``users[i]`` at event time ``times[i]``) usable for training.

    ``alerts`` maps an account to the event times of the alerts raised for it (any rule).
    A row is kept when it lies in ``[now - days, now)`` (any time if ``now`` is None) and not
    within ``[a - before, a + after]`` of any alert ``a`` of its account.
    """
    t = np.asarray(times, dtype=np.float64)
    if len(users) != len(t):
        raise ValueError("users and times differ in length")
    keep = np.ones(len(t), dtype=bool)
    if now is not None:
        keep &= (t >= now - days * 86400.0) & (t < now)
    if not alerts:
        return keep
    rows_of: dict[str, list[int]] = {}
    for i, u in enumerate(users):
        if u in alerts:
            rows_of.setdefault(u, []).append(i)
    for u, idx in rows_of.items():
        stamps = np.sort(np.asarray(alerts[u], dtype=np.float64))
        if not len(stamps):
            continue
        ii = np.asarray(idx)
        tt = t[ii]
        # the first alert at or after each row, and the last one before it
        pos = np.searchsorted(stamps, tt)
        nxt = stamps[np.minimum(pos, len(stamps) - 1)]
        prv = stamps[np.maximum(pos - 1, 0)]
        near_next = (pos < len(stamps)) & (nxt - tt <= before)
        near_prev = (pos > 0) & (tt - prv <= after)
        keep[ii[near_next | near_prev]] = False
    return keep


def alerts_to_leave_out(
    found: Mapping[str, Sequence[tuple[float, str]]],
    labels: Labels,
    pseudonym: Callable[[str], str],
    accounts: Iterable[str],
) -> tuple[dict[str, list[float]], int, int]:
    """The alert times per account whose windows training leaves out, from the baseline's
    alerts ``found`` (account -> (event time, alert id)) and the labels; also how many alerts
    a false-positive label let back in and how many true positives were added."""
    false_ids = labels.ids("false_positive")
    out: dict[str, list[float]] = {}
    let_in = 0
    for user, alerts in found.items():
        for t, alert_id in alerts:
            if alert_id in false_ids:
                let_in += 1
            else:
                out.setdefault(user, []).append(t)
    by_pseudonym: dict[str, list[float]] = {}
    for lab in labels.of_verdict("true_positive"):
        by_pseudonym.setdefault(lab.account, []).append(lab.alert_time)
    added = 0
    if by_pseudonym:
        for user in accounts:
            times = by_pseudonym.get(pseudonym(user))
            if times:
                out.setdefault(user, []).extend(times)
                added += len(times)
    return out, let_in, added
