"""Scoring alerts against the drawn cases.

- A case is *found* by an ``anomaly`` alert on its account from 10 minutes before its first
  injected event to 24 hours after its last; time to first alert = that alert's event time
  minus the first injected event.
- A leaver's time between giving notice and the case's first event is neither a case nor
  clean: alerts then count neither way.
- Every other ``anomaly`` alert of the evaluated part is *false*; the rate is per 1,000
  account-days of the evaluated part (every account in the directory, every day).
- Targets (issue 13): bursts of 5x or more lasting an hour or more found within an hour,
  recall >= 0.9; sustained changes of 2x-3x over 5 working days or more found within two
  days, recall >= 0.8; at most 1 false alert per 1,000 account-days.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.anomaly_eval.detect import Found
from watchdog.simulate.drawn import FAMILIES, Case
from watchdog.simulate.drawn.params import reaches

BEFORE = 600.0
AFTER = 86400.0
HOUR = 3600.0
# within this of the first injected event counts as "in time" (issue 13's deadlines)
DEADLINE = {"burst": HOUR, "sustained": 2 * 86400.0, "low_and_slow": 2 * 86400.0,
            "off_pattern": HOUR}
MAX_FALSE = 1.0


@dataclass(frozen=True)
class Target:
    name: str
    family: str
    goal: float
    select: Callable[[Case], bool]
    words: str
    level: float  # the multiple of the account's usual that the target's words name


TARGETS = (
    Target("burst>=5x,>=1h", "burst", 0.9,
           lambda c: c.intensity >= 5 and c.duration_ms >= 3_600_000,
           "bursts >= 5x lasting >= 1 h, first alert within 1 h: recall >= 0.9", 5.0),
    Target("sustained 2-3x,>=5d", "sustained", 0.8,
           lambda c: 2 <= c.intensity <= 3 and c.workdays >= 5,
           "sustained 2-3x over >= 5 working days, first alert within 2 days: recall >= 0.8",
           2.0),
)


def reached(c: Case, level: float) -> float | None:
    """Seconds from a case's first event until its rate first reaches ``level`` times the
    account's usual (0 for a sudden onset; None if the case does not record its ramp, or
    never gets there). A gradual case ramps from 1x over its first half: a short one
    continuously, a long one a step each working day (day ``j`` at ``j / (workdays - 1)``)."""
    need = reaches(c.onset, c.intensity, level)
    if need is None:
        return None
    if need == 0.0:
        return 0.0
    if c.days_ms:
        at = c.days_ms[min(len(c.days_ms) - 1,
                           math.ceil(need * max(1, len(c.days_ms) - 1) - 1e-9))]
    elif c.ramp_from_ms is not None:
        at = c.ramp_from_ms + need * c.duration_ms
    else:
        return None
    return max(0.0, (at - c.start_ms) / 1000)


@dataclass(frozen=True)
class Outcome:
    """One case as one detector saw it."""

    case: Case
    world: str
    ttd: float | None  # seconds from the first injected event to the first alert

    @property
    def found(self) -> bool:
        return self.ttd is not None

    @property
    def in_time(self) -> bool:
        return self.ttd is not None and self.ttd <= DEADLINE[self.case.family]


def match(cases: Sequence[Case], alerts: Sequence[Found], world: str, t0: float
          ) -> tuple[list[Outcome], int]:
    """Outcomes of ``cases`` and the number of false alerts at or after ``t0``."""
    by_user: dict[str, list[Case]] = defaultdict(list)
    for c in cases:
        by_user[c.user_id].append(c)
    first: dict[str, float] = {}
    false = 0
    for a in alerts:
        if a.t < t0:
            continue
        hit = neutral = False
        for c in by_user.get(a.user_id, ()):
            s, e = c.start_ms / 1000, c.end_ms / 1000
            if s - BEFORE <= a.t <= e + AFTER:
                hit = True
                first[c.case_id] = min(first.get(c.case_id, a.t), a.t)
            elif c.notice_at_ms is not None and c.notice_at_ms / 1000 <= a.t < s:
                neutral = True
        if not (hit or neutral):
            false += 1
    out = [Outcome(c, world, first[c.case_id] - c.start_ms / 1000 if c.case_id in first
                   else None) for c in cases]
    return out, false


def examples(cases: Sequence[Case], alerts: Sequence[Found]) -> dict[str, str]:
    """Per family, what the first alert that found one of its cases says (the words an
    analyst reads)."""
    out: dict[str, str] = {}
    for a in sorted(alerts, key=lambda a: a.t):
        for c in cases:
            if (c.family not in out and c.user_id == a.user_id
                    and c.start_ms / 1000 - BEFORE <= a.t <= c.end_ms / 1000 + AFTER):
                out[c.family] = a.summary
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% interval of a recall of ``k`` in ``n`` (few cases: the interval says how few)."""
    if not n:
        return None
    p = k / n
    d = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, mid - half), min(1.0, mid + half)


def _q(values: list[float], q: float) -> float | None:
    return float(np.quantile(values, q)) if values else None


def summarize(outcomes: Sequence[Outcome], false: int, account_days: float) -> dict[str, Any]:
    """Per family: recall, recall in time, time to first alert; targets; false-alert rate."""
    fams: dict[str, Any] = {}
    for fam in FAMILIES:
        mine = [o for o in outcomes if o.case.family == fam]
        ttd = [o.ttd / HOUR for o in mine if o.ttd is not None]
        fams[fam] = {
            "cases": len(mine),
            "found": sum(o.found for o in mine),
            "recall": sum(o.found for o in mine) / len(mine) if mine else None,
            "recall_in_time": sum(o.in_time for o in mine) / len(mine) if mine else None,
            "deadline_h": DEADLINE[fam] / HOUR,
            "ttd_median_h": _q(ttd, 0.5),
            "ttd_p90_h": _q(ttd, 0.9),
        }
    rate = 1000.0 * false / account_days if account_days else 0.0
    targets: dict[str, Any] = {}
    for t in TARGETS:
        sel = [o for o in outcomes if o.case.family == t.family and t.select(o.case)]
        k = sum(o.in_time for o in sel)
        got = k / len(sel) if sel else None
        # split by onset: a gradual case ramps from 1x over its first half, so its first
        # hour (or day) is far below its drawn intensity; the split says which misses those are
        onsets = {on: [sum(o.in_time for o in sel if o.case.onset == on),
                       sum(o.case.onset == on for o in sel)] for on in ("sudden", "gradual")}
        # a reading, not the target: the deadline counted from when the case reaches the
        # intensity the target names (a gradual case's first hour or day is still near 1x)
        late = [(o, reached(o.case, t.level)) for o in sel]
        known = [(o, r) for o, r in late if r is not None]
        at_level = [sum(o.ttd is not None and o.ttd - r <= DEADLINE[t.family]
                        for o, r in known), len(known)]
        targets[t.name] = {"cases": len(sel), "recall_in_time": got, "ci95": wilson(k, len(sel)),
                           "goal": t.goal, "by_onset": onsets, "level": t.level,
                           "in_time_from_level": at_level,
                           "pass": got is not None and got >= t.goal, "words": t.words}
    targets["false/1000 account-days"] = {"value": rate, "goal": MAX_FALSE,
                                          "pass": rate <= MAX_FALSE,
                                          "words": "<= 1 false anomaly alert per 1,000 "
                                                   "account-days"}
    return {"families": fams, "targets": targets, "false_alerts": false,
            "account_days": account_days, "false_per_1000_account_days": rate}
