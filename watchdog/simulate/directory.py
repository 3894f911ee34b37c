"""The directory over time: every account's records, and its state at any instant.

Clean traffic asks it who may act when (an account acts only while ``active`` or
``transferred``, with the roles in force); the scenarios add departures, suspensions and
transfers to it before any event is generated.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from watchdog.simulate import catalog as C
from watchdog.simulate.clock import DAY, HOUR, MINUTE, Calendar, iso
from watchdog.simulate.org import Account

ACTING = ("active", "transferred")
KEEP = 4  # stable accounts of each role that churn never touches


@dataclass(frozen=True, slots=True)
class Change:
    at: int
    status: str
    roles: tuple[str, ...]
    department: str | None
    manager: str | None
    notice_at: int | None = None  # contract 1.1: the employee gave notice of leaving then

    @property
    def acting(self) -> bool:
        return self.status in ACTING


class Directory:
    def __init__(self) -> None:
        self._times: dict[str, list[int]] = {}
        self._changes: dict[str, list[Change]] = {}

    def add(self, user_id: str, change: Change) -> None:
        times = self._times.setdefault(user_id, [])
        i = bisect_right(times, change.at)
        times.insert(i, change.at)
        self._changes.setdefault(user_id, []).insert(i, change)

    def hire(self, acct: Account) -> None:
        self.add(acct.user_id, Change(acct.hired, "active", acct.roles, acct.department,
                                      acct.manager))

    def at(self, user_id: str, t: int) -> Change | None:
        times = self._times.get(user_id)
        if not times:
            return None
        i = bisect_right(times, t)
        return self._changes[user_id][i - 1] if i else None

    def next_change(self, user_id: str, t: int) -> int | None:
        """The first change strictly after ``t``."""
        times = self._times.get(user_id, [])
        i = bisect_right(times, t)
        return times[i] if i < len(times) else None

    @property
    def size(self) -> int:
        """Records held (a scenario that adds one changed the directory)."""
        return sum(len(t) for t in self._times.values())

    def changes(self, user_id: str) -> list[Change]:
        return list(self._changes.get(user_id, []))

    def stable(self, user_id: str, start: int, end: int) -> bool:
        """Active since before ``start`` with no change before ``end``."""
        times = self._times.get(user_id, [])
        return (bool(times) and times[0] < start and self._changes[user_id][0].status == "active"
                and (len(times) == 1 or times[1] >= end))

    def docs(self) -> list[dict[str, Any]]:
        rows = []
        for uid, changes in self._changes.items():
            for ch in changes:
                doc: dict[str, Any] = {"user_id": uid, "status": ch.status,
                                       "effective": iso(ch.at), "roles": list(ch.roles)}
                if ch.department:
                    doc["department"] = ch.department
                if ch.manager:
                    doc["manager"] = ch.manager
                if ch.notice_at is not None:
                    doc["notice_at"] = iso(ch.notice_at)
                rows.append((ch.at, uid, doc))
        rows.sort(key=lambda r: (r[0], r[1]))
        return [r[2] for r in rows]


def _other_department(acct: Account, rng: random.Random) -> C.Department:
    choices = [d for d in C.DEPARTMENTS if d.name != acct.department and len(d.roles) == 1]
    return rng.choice(choices)


def plan_lifecycle(staff: list[Account], directory: Directory, cal: Calendar,
                   rng: random.Random) -> set[str]:
    """Natural churn: past departures and transfers, and during the period departures,
    transfers, suspensions (some reinstated) and new hires. Returns the accounts whose
    state changes during the period (the scenarios leave those alone)."""
    n = len(staff)
    span_days = (cal.end - cal.start) / DAY
    pool = [a for a in staff if a.manager is not None]
    rng.shuffle(pool)
    changed: set[str] = set()
    left: dict[tuple[str, ...], int] = {}
    for a in staff:
        left[a.roles] = left.get(a.roles, 0) + 1

    def take(k: int) -> list[Account]:
        """``k`` accounts for churn, leaving every role at least ``KEEP`` stable members
        (the scenarios need some)."""
        got: list[Account] = []
        for a in list(pool):
            if len(got) == k:
                break
            if left[a.roles] > KEEP:
                left[a.roles] -= 1
                got.append(a)
                pool.remove(a)
        return got

    # before the period: people who left or moved a while ago
    for a in take(round(0.03 * n)):
        at = rng.randint(a.hired + 30 * DAY, cal.start - DAY) if a.hired + 31 * DAY < cal.start \
            else cal.start - DAY
        directory.add(a.user_id, Change(at - at % HOUR, "departed", (), a.department, None))
    for a in take(round(0.05 * n)):
        if a.hired + 31 * DAY >= cal.start:
            continue
        at = rng.randint(a.hired + 30 * DAY, cal.start - DAY)
        dept = _other_department(a, rng)
        directory.add(a.user_id, Change(at - at % DAY, "transferred", dept.roles, dept.name,
                                        a.manager))

    workdays = [d for d in cal.days if d.workday and d.open > cal.start + HOUR]
    if not workdays:
        return changed
    scale = span_days / 30
    for a in take(max(1, round(0.012 * n * scale))):  # departures, after the last day's work
        day = rng.choice(workdays)
        at = day.start + 21 * HOUR + rng.randint(0, 60) * MINUTE
        directory.add(a.user_id, Change(at, "departed", (), a.department, None))
        changed.add(a.user_id)
    for a in take(max(1, round(0.010 * n * scale))):  # transfers, effective at midnight
        day = rng.choice(workdays)
        dept = _other_department(a, rng)
        directory.add(a.user_id, Change(day.start, "transferred", dept.roles, dept.name,
                                        a.manager))
        changed.add(a.user_id)
    for a in take(max(1, round(0.0025 * n * scale))):  # suspensions, some reinstated
        day = rng.choice(workdays)
        at = day.open + rng.randint(2 * 60, 8 * 60) * MINUTE
        directory.add(a.user_id, Change(at, "suspended", a.roles, a.department, a.manager))
        if rng.random() < 0.5:
            back = at + rng.randint(2, 7) * DAY
            directory.add(a.user_id, Change(back, "active", a.roles, a.department, a.manager))
        changed.add(a.user_id)
    for a in take(max(1, round(0.010 * n * scale))):  # new hires: first record in the period
        day = rng.choice(workdays)
        a.hired = day.open + HOUR  # the caller writes the hire record
        changed.add(a.user_id)
    return changed
