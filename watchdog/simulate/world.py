"""Build the simulated organisation: staff, directory, register, policy, the plan of
injected violations (the ground truth) and the lazy event stream."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import orjson

from watchdog.simulate import catalog as C
from watchdog.simulate.background import Background
from watchdog.simulate.clock import Calendar, to_ms
from watchdog.simulate.config import SimConfig
from watchdog.simulate.directory import Directory, plan_lifecycle
from watchdog.simulate.ids import derive
from watchdog.simulate.org import Account, build_services, build_staff
from watchdog.simulate.policy import build_policy
from watchdog.simulate.register import Register, plan_register
from watchdog.simulate.render import Factory
from watchdog.simulate.scenarios import Context, plan
from watchdog.simulate.sessions import Activity
from watchdog.simulate.steps import StepRunner
from watchdog.simulate.stream import merge

Progress = Callable[[int, int], None]


class World:
    """A simulated organisation. ``policy``, ``directory``, ``subjects`` and
    ``ground_truth`` are plain documents, known before any event is generated;
    ``events()`` streams the access events in event-time order (each call replays the
    identical stream; memory does not grow with the number of events).

    Events share nothing mutable with each other except category and role lists: do not
    mutate those in place.
    """

    def __init__(self, cfg: SimConfig, cal: Calendar, staff: list[Account],
                 services: list[Account], directory: Directory, register: Register,
                 ctx: Context) -> None:
        self.config = cfg
        self.calendar = cal
        self.policy: dict[str, Any] = build_policy()
        self.directory: list[dict[str, Any]] = directory.docs()
        self.subjects: list[dict[str, Any]] = register.docs()
        self._staff = staff
        self._services = services
        self._dir = directory
        self._pool = register.normal_pool()
        self._employees = [a.user_id for a in staff]
        self._planned = sorted(ctx.planned, key=lambda p: (p[0], p[1]))
        self._planned_bytes = [(ts, orjson.dumps(ev)) for ts, _, ev in self._planned]
        when = {ev["event"]["id"]: ts for ts, _, ev in self._planned}

        def order(r: dict[str, Any]) -> tuple[int, str, str]:
            # an obligation's truth names a record, not an event: its time is the deadline
            ts = when.get(r["event_id"])
            if ts is None:
                ts = int(datetime.fromisoformat(r["ts"]).timestamp() * 1000)
            return ts, r["event_id"], r["rule"]

        # expected alerts; then what must raise nothing (near misses, rules left off)
        self.ground_truth: list[dict[str, Any]] = sorted(ctx.truth, key=order)
        self.silent: list[dict[str, Any]] = sorted(ctx.silent, key=order)
        self.skipped: list[str] = list(ctx.skipped)
        self.accounts_feed: list[dict[str, Any]] = ctx.idp.docs(
            staff + services, directory, cal, random.Random(derive(cfg.seed, "idp")))
        self._blackouts = ctx.blackouts
        self._seq_skips = dict(ctx.seq_skips)
        self._silences = list(ctx.silences)

    @property
    def planned_event_ids(self) -> frozenset[str]:
        """Events planned by scenarios (injected violations and lawful edge cases);
        every other event is clean background traffic."""
        return frozenset(ev["event"]["id"] for _, _, ev in self._planned)

    @property
    def accounts(self) -> int:
        """Accounts in the directory (staff, new hires, service accounts)."""
        return len(self._staff) + len(self._services)

    def events(self, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
        """The access events, lazily, in event-time order. ``progress(emitted, ts_ms)`` is
        called every 16,384 events and once at the end with ``ts_ms = -1``."""
        cfg = self.config
        factory = Factory()
        runner = StepRunner(factory, self._pool, self._employees)
        activity = Activity(cfg.seed, cfg.events_per_account_per_day, self.calendar,
                            self._staff, self._dir, factory, runner, self._blackouts)
        background = Background(cfg.seed, self.calendar, self._services, factory, runner)
        planned = [(ts, orjson.loads(b)) for ts, b in self._planned_bytes]
        return merge(cfg.seed, self.calendar.days, activity.plan_day, background.sources(),
                     planned, self._seq_skips, self._silences, progress)


def build_world(cfg: SimConfig | None = None, *,
                extra: Callable[[Context], None] | None = None) -> World:
    """Plan the organisation and every injected violation; no event is generated yet.
    ``extra(ctx)``, if given, plans more scenarios after the registered ones (with
    ``ctx.begin(scenario)`` / ``ctx.end()`` around each)."""
    cfg = cfg or SimConfig()
    seed = cfg.seed
    cal = Calendar(to_ms(cfg.start), cfg.days, C.POLICY_TZ, C.BUSINESS_START, C.BUSINESS_END,
                   C.BUSINESS_WEEKDAYS)
    staff = build_staff(cfg.accounts, cal.start, random.Random(derive(seed, "staff")))
    services = build_services(len(staff), cal.start)
    directory = Directory()
    unstable = plan_lifecycle(staff, directory, cal, random.Random(derive(seed, "lifecycle")))
    for acct in staff + services:
        directory.hire(acct)
    register = Register(cfg.subject_count)
    plan_register(register, cal, random.Random(derive(seed, "register")))
    ctx = Context(cfg, cal, staff, services, directory, register, Factory(), unstable)
    plan(ctx, seed, cfg.violations_per_rule, cfg.benign_per_kind, cfg.insiders)
    if extra is not None:
        extra(ctx)
    return World(cfg, cal, staff, services, directory, register, ctx)
