"""Plan one drawn case into a world: pick the time and the account, plan its events, declare
them in the ground truth (``anomaly``), and return the case's record.

The account's clean traffic pauses while a case's events run (the simulator's reservations):
the injected events replace its work for that stretch, at ``intensity`` times its usual
rate. Every event names customers the role reads (or exports) every day, for the role's
own purpose, from its own workstation unless the case is from a new address: no rule of the
policy is broken by the reads or the small exports themselves.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from watchdog.simulate.clock import DAY, HOUR, MINUTE, SECOND, Day
from watchdog.simulate.directory import Change
from watchdog.simulate.drawn.case import Case
from watchdog.simulate.drawn.params import Params, ramp
from watchdog.simulate.drawn.usual import EXPORTS, READS, WORKING_HOURS, Access, Usual, usual
from watchdog.simulate.org import Account
from watchdog.simulate.scenarios.context import Context, NoRoom

RULE = "anomaly"
MAX_EXPORTED_PER_DAY = 1500  # stays far below bulk_export's 2,000 an hour over a 2-3 h block
EXPORT_SIZE = (5, 40)  # subjects per export: far below bulk_export's 500


class _Plan:
    """The events of one case as they are planned, with their bookkeeping."""

    def __init__(self, ctx: Context, rng: random.Random, pool: Sequence[str]) -> None:
        self.ctx, self.rng, self.pool = ctx, rng, pool
        self.times: list[int] = []
        self.subjects = 0

    def event(self, t: int, acct: Account, a: Access, k: int = 1, *, ip: str | None = None,
              host: str | None = None) -> None:
        ids = list(dict.fromkeys(self.rng.choice(self.pool) for _ in range(k)))
        ev = self.ctx.access(t, acct, a.dataset, a.action, a.resource, a.categories,
                             purpose=a.purpose, ids=ids, dest=a.dest, ip=ip, host=host)
        self.ctx.expect(ev, RULE)
        self.times.append(t)
        self.subjects += len(ids)

    def login(self, t: int, acct: Account, ip: str, action: str = "login") -> None:
        ev = self.ctx.login(t, acct, ip=ip, action=action)
        self.ctx.expect(ev, RULE)
        self.times.append(t)

    def reads(self, acct: Account, a: Access, start: int, end: int, per_hour: float,
              p: Params | None, *, ip: str | None = None, host: str | None = None) -> int:
        """Reads of one customer each from ``start`` to ``end`` at ``per_hour`` times the
        onset's ramp (``p`` None: flat); at least one. Returns how many."""
        times = arrivals(self.rng, start, end, per_hour, p) or [start + (end - start) // 2]
        for t in times:
            self.event(t, acct, a, ip=ip, host=host)
        return len(times)


def arrivals(rng: random.Random, start: int, end: int, per_hour: float,
             p: Params | None) -> list[int]:
    """Times of a Poisson process from ``start`` to ``end`` (ms) at ``per_hour`` times the
    onset's ramp (``p`` None: flat), by thinning: gaps are drawn at the peak rate and each
    arrival kept with the ramp's share of it. (Drawing each gap at the rate where it starts,
    as before, made a gradual onset at under a few reads an hour wait out most of its ramp:
    an "8.4x" burst of 3.9 h at 0.76 reads an hour came out as one read.)"""
    span = max(end - start, 1)
    peak = 1.0 if p is None else max(p.intensity, 1.0)  # the ramp's largest multiple
    out: list[int] = []
    t = start
    while True:
        t += int(rng.expovariate(per_hour * peak) * HOUR) + SECOND
        if t >= end - SECOND:
            return out
        # a flat rate (no ramp, or a sudden onset) keeps every arrival without a draw, so
        # those cases take the same random draws as before the thinning
        if p is None or p.onset == "sudden" or rng.random() * peak < ramp(p, (t - start) / span):
            out.append(t)


def _after(ctx: Context, not_before: int, days: Sequence[Day]) -> list[Day]:
    return [d for d in days if d.start >= not_before and d.end <= ctx.cal.end - DAY]


def _short_start(ctx: Context, rng: random.Random, p: Params, not_before: int) -> int:
    """A start for a burst or off-pattern case at its time of day."""
    cal, tod, dur = ctx.cal, p.time_of_day, p.duration_ms
    cands: list[tuple[int, int]] = []
    for d in _after(ctx, not_before, cal.days):
        if tod == "morning" and d.workday:
            cands.append((d.open + 30 * MINUTE, d.open + 3 * HOUR))
        elif tod == "afternoon" and d.workday:
            cands.append((d.open + 4 * HOUR, max(d.open + 4 * HOUR, d.close - 30 * MINUTE - dur)))
        elif tod == "evening" and d.workday:
            cands.append((d.close + 15 * MINUTE, d.close + 2 * HOUR))
        elif tod == "night" and d.workday:
            cands.append((d.start + 22 * HOUR, d.start + 26 * HOUR))
        elif tod == "weekend" and not d.business:
            cands.append((d.start + 10 * HOUR, d.start + 17 * HOUR))
        elif tod == "before_open" and d.workday:
            cands.append((d.open - 3 * HOUR, d.open - HOUR))
    cands = [(a, b) for a, b in cands if b + dur < cal.end - 2 * HOUR]
    if not cands:
        raise NoRoom(f"no '{tod}' time after the training part for a {p.family} case")
    a, b = rng.choice(cands)
    t = rng.randint(a, b)
    return t - t % SECOND


def _new_address(rng: random.Random) -> str:
    """An internal address no office, VPN pool or batch host uses (10.100-199.x.x)."""
    return f"10.{rng.randint(100, 199)}.{rng.randint(0, 250)}.{rng.randint(2, 250)}"


def short_case(ctx: Context, rng: random.Random, p: Params, case_id: str, not_before: int,
               pool: Sequence[str]) -> Case:
    """A burst (mass read) or an off-pattern session: ``duration_ms`` of reads at
    ``intensity`` times the account's usual customers per hour."""
    start = _short_start(ctx, rng, p, not_before)
    end = start + p.duration_ms
    acct = ctx.actor(rng, p.role, start, end)
    u = usual(p.role, acct.volume, ctx.cfg.events_per_account_per_day)
    plan = _Plan(ctx, rng, pool)
    ip = _new_address(rng) if p.new_address else None
    host = f"pc-{rng.randint(1000, 9999)}" if p.new_address else None
    if p.family == "off_pattern":
        plan.login(start, acct, ip or acct.ip)
    plan.reads(acct, READS[p.role], start + SECOND, end - SECOND, u.subjects_per_hour, p,
               ip=ip, host=host)
    if p.family == "off_pattern":
        plan.login(end - SECOND, acct, ip or acct.ip, action="logout")
    span_h = (end - start) / HOUR
    achieved = plan.subjects / span_h / u.subjects_per_hour
    if p.onset == "gradual":  # the peak's share of the ramp: 3/4 of the mean multiple
        achieved = achieved * p.intensity / (0.75 * p.intensity + 0.25)
    return _case(p, case_id, acct, plan, achieved, u.subjects_per_hour, "subjects/hour",
                 p.duration_ms, ramp_from=start + SECOND)


def _workdays(ctx: Context, rng: random.Random, p: Params, not_before: int) -> list[Day]:
    work = [d for d in _after(ctx, not_before, ctx.cal.days) if d.workday]
    firsts = range(0, len(work) - p.workdays + 1)
    if not firsts:
        raise NoRoom(f"fewer than {p.workdays} working days after the training part")
    i = rng.choice(firsts)
    return work[i:i + p.workdays]


def _give_notice(ctx: Context, rng: random.Random, acct: Account, first: Day,
                 not_before: int) -> int:
    """The leaver gives notice (contract 1.1 ``notice_at``) in the evening 1-4 working days
    before the case, after its work is done (the simulator ends a session at a directory
    change), or early on the first day when the training part ends just before it."""
    before = [d for d in ctx.cal.days if d.workday and not_before <= d.start < first.start]
    if before:
        at = before[-min(len(before), rng.randint(1, 4))].close + rng.randint(20, 50) * MINUTE
    else:
        at = first.open - rng.randint(20, 50) * MINUTE
    ctx.directory.add(acct.user_id, Change(at, "active", acct.roles, acct.department,
                                           acct.manager, notice_at=at))
    return at


def long_case(ctx: Context, rng: random.Random, p: Params, case_id: str, not_before: int,
              pool: Sequence[str]) -> Case:
    """``workdays`` consecutive working days of more reads (``sustained``) or of many small
    exports (``low_and_slow``), ramping up for a gradual onset; a leaver gives notice before
    and departs the evening after the last day."""
    days = _workdays(ctx, rng, p, not_before)
    exports = p.family == "low_and_slow"
    windows: list[tuple[int, int]] = []
    for d in days:
        if exports:  # one block of 2-3 hours: the rest of the day is ordinary work
            block = rng.randint(120, 180) * MINUTE
            s = rng.randint(d.open + 80 * MINUTE, d.close - 80 * MINUTE - block)
            windows.append((s - s % SECOND, s - s % SECOND + block))
        else:
            windows.append((d.open + 40 * MINUTE, d.close - 40 * MINUTE))
    acct = ctx.actor(rng, p.role, windows[0][0], windows[0][1], quiet=True, lifecycle=True)
    for s, e in windows[1:]:
        ctx.reserve(acct, s, e, quiet=exports)
    u = usual(p.role, acct.volume, ctx.cfg.events_per_account_per_day)
    notice = _give_notice(ctx, rng, acct, days[0], not_before) if p.leaver else None
    plan = _Plan(ctx, rng, pool)
    peak = 0.0
    for j, (s, e) in enumerate(windows):
        m = ramp(p, j / max(1, len(windows) - 1))
        if exports:
            plan.reads(acct, READS[p.role], s + SECOND, e - SECOND,
                       u.subjects_per_hour, None)
            got = _exports(plan, acct, EXPORTS[p.role], s, e, u, m)
            peak = max(peak, got / u.exported_per_day)
        else:
            before = plan.subjects
            per_hour = m * u.subjects_per_hour * WORKING_HOURS / ((e - s) / HOUR)
            plan.reads(acct, READS[p.role], s + SECOND, e - SECOND, per_hour, None)
            peak = max(peak, (plan.subjects - before) / (u.subjects_per_hour * WORKING_HOURS))
    departs = None
    if p.leaver:
        departs = days[-1].close + HOUR
        ctx.depart(acct, departs)
    usual_rate, unit = ((u.exported_per_day, "exported subjects/day") if exports else
                        (u.subjects_per_hour * WORKING_HOURS, "subjects/day"))
    return _case(p, case_id, acct, plan, peak, usual_rate, unit,
                 windows[-1][1] - windows[0][0], notice, departs,
                 days=tuple(s for s, _ in windows))


def _exports(plan: _Plan, acct: Account, a: Access, start: int, end: int, u: Usual,
             m: float) -> int:
    """The day's small exports, evenly spread over the block; returns subjects taken out."""
    total = max(EXPORT_SIZE[0], min(MAX_EXPORTED_PER_DAY, round(m * u.exported_per_day)))
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(min(plan.rng.randint(*EXPORT_SIZE), max(1, total - sum(sizes))))
    step = (end - start) // (len(sizes) + 1)
    before = plan.subjects
    for i, k in enumerate(sizes):
        plan.event(start + (i + 1) * step, acct, a, k)
    return plan.subjects - before


def _case(p: Params, case_id: str, acct: Account, plan: _Plan, achieved: float, usual_rate: float,
          unit: str, duration: int, notice: int | None = None,
          departs: int | None = None, *, ramp_from: int | None = None,
          days: tuple[int, ...] = ()) -> Case:
    times = sorted(plan.times)
    return Case(case_id=case_id, family=p.family, user_id=acct.user_id, role=p.role,
                intensity=round(p.intensity, 3), achieved=round(achieved, 3), onset=p.onset,
                time_of_day=p.time_of_day, start_ms=times[0], end_ms=times[-1],
                duration_ms=duration, workdays=p.workdays, events=len(times),
                subjects=plan.subjects, usual=round(usual_rate, 3), unit=unit,
                leaver=p.leaver, notice_at_ms=notice, departs_ms=departs,
                new_address=p.new_address, ramp_from_ms=ramp_from, days_ms=days)

