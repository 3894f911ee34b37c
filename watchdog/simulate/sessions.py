"""A working day of every employee: when they log in and out, and what they do between.

Each (account, day) has its own seeded generator, so a day's traffic does not depend on
any other. Sessions stay inside the policy's business hours unless a role has
``after_hours`` (DBAs, SREs and security on call at night and at weekends); people in
Manila or Singapore keep their local hours, which fall inside Tokyo's. An account acts only
while the directory says ``active`` or ``transferred``, with the roles then in force, and
stops at the instant its record changes. Each account may take out at most
``EXPORT_BUDGET`` subjects a day (``BULK_BUDGET`` for ``bulk_export`` roles), so no
60-minute window, even across midnight, reaches the policy's hourly limit.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from watchdog.simulate import catalog as C
from watchdog.simulate.behaviour import ROLE_TASKS, Task
from watchdog.simulate.clock import HOUR, MINUTE, SECOND, Calendar, Day, local_base
from watchdog.simulate.directory import Directory
from watchdog.simulate.ids import derive
from watchdog.simulate.org import Account
from watchdog.simulate.render import Factory
from watchdog.simulate.steps import StepRunner

EXPORT_BUDGET = 900  # per account-day; two adjacent days stay under 2,000 an hour
BULK_BUDGET = 9000  # bulk_export roles: two adjacent days stay under 20,000
Event = tuple[int, dict[str, Any]]
Blackouts = dict[str, list[tuple[int, int]]]
_NEVER = 1 << 62


class _Table:
    """The tasks of a combination of roles, ready for ``random.choices``."""

    def __init__(self, roles: tuple[str, ...]) -> None:
        tasks: list[Task] = []
        for r in roles:
            tasks.extend(ROLE_TASKS.get(r, ()))
        self.tasks = tasks
        self.cum = list(accumulate(t.weight for t in tasks))
        total = sum(t.weight for t in tasks) or 1.0
        self.total = total
        self.steps_per_task = sum(t.weight * len(t.steps) for t in tasks) / total
        self.after_hours = any(C.ROLES[r].after_hours for r in roles if r in C.ROLES)
        self.bulk = any(C.ROLES[r].bulk_export for r in roles if r in C.ROLES)


class Activity:
    def __init__(self, seed: int, epd: float, cal: Calendar, staff: list[Account],
                 directory: Directory, factory: Factory, runner: StepRunner,
                 blackouts: Blackouts) -> None:
        self.seed = seed
        self.epd = epd
        self.cal = cal
        self.staff = staff
        self.directory = directory
        self.factory = factory
        self.runner = runner
        self.blackouts = blackouts
        self._tables: dict[tuple[str, ...], _Table] = {}
        self._tz: dict[str, ZoneInfo] = {}

    def _table(self, roles: tuple[str, ...]) -> _Table:
        t = self._tables.get(roles)
        if t is None:
            t = self._tables[roles] = _Table(roles)
        return t

    def plan_day(self, day: Day) -> list[Iterator[Event]]:
        out: list[Iterator[Event]] = []
        for acct in self.staff:
            state = self.directory.at(acct.user_id, day.start)
            if state is None or not state.acting:
                continue
            until = self.directory.next_change(acct.user_id, day.start) or _NEVER
            rng = random.Random(derive(self.seed, "day", acct.idx, day.index))
            table = self._table(state.roles)
            budget = [BULK_BUDGET if table.bulk else EXPORT_BUDGET]
            blk = [b for b in self.blackouts.get(acct.user_id, ())
                   if b[1] > day.start and b[0] < day.end + 12 * HOUR]
            for start, end, tasks in self._sessions(acct, table, day, rng):
                out.append(self._session(acct, state.roles, table, day, start, end, tasks,
                                         until, blk, rng, budget))
        return out

    def _sessions(self, acct: Account, table: _Table, day: Day,
                  rng: random.Random) -> list[tuple[int, int, int]]:
        """(start, end, number of tasks) of the day's sessions."""
        tz = self._tz.get(acct.tz)
        if tz is None:
            tz = self._tz[acct.tz] = ZoneInfo(acct.tz)
        base = local_base(tz, day.date)
        after = table.after_hours
        per_task = max(table.steps_per_task, 1.0)
        out: list[tuple[int, int, int]] = []
        if day.workday:
            works = rng.random() > 0.06
        elif day.business:
            works = rng.random() < 0.08
        else:
            works = False
        if works:
            start = base + int(min(max(rng.gauss(9.0, 0.6), 8.2), 11.0) * HOUR)
            end = start + int(min(max(rng.gauss(8.8, 0.8), 4.0), 10.5) * HOUR)
            if not after:
                start = max(start, day.open + 5 * MINUTE)
                end = min(end, day.close - 20 * MINUTE)
            if end - start > HOUR:
                n = max(1, round(rng.gauss(1.0, 0.15) * (self.epd * acct.volume - 2) / per_task))
                if rng.random() < 0.35:  # logs out for lunch
                    lunch = base + int(rng.uniform(11.8, 12.6) * HOUR)
                    back = lunch + rng.randint(35, 65) * MINUTE
                    if start + HOUR < lunch and back + HOUR < end:
                        share = (lunch - start) / (end - start - (back - lunch))
                        out.append((start, lunch, round(n * share)))
                        out.append((back, end, n - round(n * share)))
                        n = -1
                if n >= 0:
                    out.append((start, end, n))
        if after and day.business and rng.random() < 0.10:  # on call at night
            start = base + int(rng.uniform(21.0, 25.0) * HOUR)
            out.append((start, start + rng.randint(20, 120) * MINUTE, rng.randint(2, 8)))
        if not day.business:
            if after and rng.random() < 0.2:  # weekend on call
                start = base + int(rng.uniform(10.0, 16.0) * HOUR)
                out.append((start, start + rng.randint(30, 180) * MINUTE, rng.randint(2, 10)))
            elif not after and rng.random() < 0.02:  # a look at the mail: no personal data
                start = base + int(rng.uniform(10.0, 20.0) * HOUR)
                out.append((start, start + rng.randint(3, 15) * MINUTE, 0))
        out.sort()
        return out

    def _session(self, acct: Account, roles: tuple[str, ...], table: _Table, day: Day,
                 start: int, end: int, n_tasks: int, until: int,
                 blk: list[tuple[int, int]], rng: random.Random,
                 budget: list[int]) -> Iterator[Event]:
        fac = self.factory
        runner = self.runner
        floor = fac.floor
        uid = acct.user_id
        ip = acct.vpn_ip if rng.random() < 0.25 else acct.ip
        host = acct.host
        t = max(start, self.cal.start, day.start)
        hard = min(until, self.cal.end)
        limit = hard if table.after_hours else min(hard, day.close)
        if t >= hard:
            return

        def blocked(ms: int) -> bool:
            return any(a <= ms < b for a, b in blk)

        def login(ms: int, outcome: str) -> dict[str, Any]:
            return fac.event(ms, C.IDP, "login", {"id": uid, "name": acct.name,
                                                   "roles": list(roles)},
                             outcome=outcome, ip=ip, host=host)

        if rng.random() < 0.03:  # a mistyped password or two
            for _ in range(1 if rng.random() < 0.85 else 2):
                if not (blk and blocked(t)):
                    yield t, login(t, "failure")
                t += rng.randint(4, 25) * SECOND
        if t >= hard:
            return
        if not (blk and blocked(t)):
            yield t, login(t, "success")
        if n_tasks > 0 and t < limit:
            tasks, cum, total = table.tasks, table.cum, table.total
            mean_gap = max(end - t, MINUTE) / (n_tasks + 0.5)
            cur: list[Any] = [None]
            rnd = rng.random
            expo = rng.expovariate
            done = False
            while not done:
                t += int(expo(1.0) * mean_gap) + SECOND
                if t >= end:
                    break
                cur[0] = None
                for step in tasks[bisect(cum, rnd() * total)].steps:
                    lo, hi = step.gap
                    t += int((lo + rnd() * (hi - lo)) * SECOND)
                    if t >= limit:
                        done = True
                        break
                    got = runner.data(step, t, rng, cur, budget)
                    if got is None:
                        break
                    ts = floor(step.dataset, t)
                    if blk and blocked(ts):
                        continue
                    outcome = "failure" if rnd() < 0.004 else "success"
                    yield ts, fac.event(ts, step.dataset, step.action, {"id": uid},
                                        outcome=outcome, ip=ip, host=host, data=got[0],
                                        dest=got[1])
        t = max(t, end) + rng.randint(5, 90) * SECOND
        if t < hard and not (blk and blocked(t)):
            yield t, fac.event(t, C.IDP, "logout", {"id": uid}, ip=ip, host=host)
