"""What an injector can do: find a time and an account, change the directory and the
register, plan events, and declare the alerts they must raise.

Accounts used by a scenario are *reserved*: their clean traffic pauses from 5 minutes
before to 5 minutes after the scenario, or 90 minutes (longer than any rule's window) when
it exports or feeds a windowed rule (bulk_export per hour, reidentification, brute_force),
so those rules see only the planned events; ``end()`` checks that every scenario asked for
the margin its events need.
Accounts with natural directory changes during the period are never used; an account a
scenario makes leave, move or be suspended is used by no other scenario.
"""

from __future__ import annotations

import random
from typing import Any

from watchdog.simulate import catalog as C
from watchdog.simulate.clock import DAY, HOUR, MINUTE, SECOND, Calendar, iso
from watchdog.simulate.config import SimConfig
from watchdog.simulate.directory import Change, Directory
from watchdog.simulate.idp import IdentityProvider
from watchdog.simulate.ids import INJECTED, EventIds, derive, employee_id
from watchdog.simulate.org import Account
from watchdog.simulate.register import Register
from watchdog.simulate.render import EXPORT_ACTIONS, Factory
from watchdog.simulate.scenarios.registry import Scenario
from watchdog.simulate.stream import Silence


class NoRoom(ValueError):
    """The period has no time of the kind a scenario needs (e.g. no working day in a
    weekend): the planner skips the scenario if it changed nothing yet."""


MARGIN = 90 * MINUTE  # longer than any rule's window (bulk_export 60, reidentification 60)
SHORT_MARGIN = 5 * MINUTE


class Context:
    def __init__(self, cfg: SimConfig, cal: Calendar, staff: list[Account],
                 services: list[Account], directory: Directory, register: Register,
                 factory: Factory, unstable: set[str]) -> None:
        self.cfg = cfg
        self.cal = cal
        self.staff = staff
        self.services = {s.dataset: s for s in services}
        self.directory = directory
        self.register = register
        self.factory = factory
        self.thresholds = dict(C.THRESHOLDS)
        self.planned: list[tuple[int, int, dict[str, Any]]] = []
        self.truth: list[dict[str, Any]] = []
        # near misses, and violations of rules the policy leaves off: must raise nothing
        self.silent: list[dict[str, Any]] = []
        self.idp = IdentityProvider()
        # erasure requests deliberately left unfulfilled (subject index, effective)
        self.overdue_erasures: set[tuple[int, int]] = set()
        self.blackouts: dict[str, list[tuple[int, int]]] = {}
        self.silences: list[Silence] = []
        self.seq_skips: dict[str, int] = {}
        self.employees = [a.user_id for a in staff]
        self._ids = EventIds(cfg.seed)
        self._unusable = set(unstable)  # natural churn, and accounts scenarios churned
        self._scenario: Scenario | None = None
        self._begun: tuple[int, ...] = ()
        self.skipped: list[str] = []  # scenarios the period had no room for
        self._expected: set[str] = set()
        self._reserved: list[tuple[str, int, int, int]] = []
        self._first_planned = 0
        self._ghosts: set[str] = set()
        self._next_idx = len(staff) + len(services)

    # -- bookkeeping used by the planner --------------------------------------------------
    def _size(self) -> tuple[int, ...]:
        return (len(self.planned), len(self.truth), len(self.silent),
                len(self.register.records), self.directory.size, len(self.staff),
                len(self.blackouts), len(self.idp.follow), len(self.idp.passwords))

    def untouched(self) -> bool:
        """Has the scenario begun with :meth:`begin` changed nothing yet?"""
        return self._size() == self._begun

    def begin(self, sc: Scenario) -> None:
        self._begun = self._size()
        self._scenario = sc
        self._expected = set()
        self._reserved = []
        self._first_planned = len(self.planned)

    def abandon(self) -> None:
        """End a scenario that planned nothing (the period had no room for it)."""
        self._scenario = None

    def end(self) -> None:
        sc = self._scenario
        assert sc is not None
        if sc.rule is None and self._expected - set(C.RULES_OFF):
            raise AssertionError(f"benign scenario {sc.name} expects alerts")
        if sc.rule is not None and (sc.rule not in self._expected | set(C.RULES_OFF)
                                    or not self._expected <= set(sc.raises)):
            raise AssertionError(f"scenario {sc.name} declares {sorted(sc.raises)} but "
                                 f"expects {sorted(self._expected)}")
        for _, _, ev in self.planned[self._first_planned:]:
            self._check_reserved(sc, ev)
        self._scenario = None

    def _check_reserved(self, sc: Scenario, ev: dict[str, Any]) -> None:
        """A planned event of a reserved account lies inside its reservation, far enough
        from the account's clean traffic for the rules with windows."""
        uid = ev["user"]["id"]
        mine = [r for r in self._reserved if r[0] == uid]
        if not mine:
            return
        ts = self._ts(ev)
        data = ev.get("data", {})
        windowed = (ev["event"]["action"] in EXPORT_ACTIONS or ev["event"]["outcome"] ==
                    "failure" or str(data.get("resource", "")).startswith("dwh."))
        if not any(lo + margin <= ts <= hi - margin and (margin >= MARGIN or not windowed)
                   for _, lo, hi, margin in mine):
            raise AssertionError(f"scenario {sc.name}: event {ev['event']['id']} of {uid} "
                                 "outside its reservation, or needs quiet=True")

    def _ts(self, ev: dict[str, Any]) -> int:
        for ts, _, e in reversed(self.planned):
            if e is ev:
                return int(ts)
        raise KeyError(ev["event"]["id"])

    # -- time -----------------------------------------------------------------------------
    def when(self, rng: random.Random, kind: str = "business", duration: int = 30 * MINUTE,
             ) -> int:
        """A start time (ms) for a scenario lasting ``duration``:
        ``business`` (a working day, well inside business hours), ``night`` (22:00-04:00
        after a working day, or 00:00-06:00), ``weekend`` (10:00-17:00 on a non-business
        day; nights when the period has none), ``before_open`` (the hour before business hours),
        ``closing`` (exactly when business hours end), ``quiet`` (nights and days off,
        away from the edges of business hours) or ``any``.
        Never inside or near a planned silence."""
        cal = self.cal
        lo_all, hi_all = cal.start + 2 * HOUR, cal.end - HOUR - duration
        windows: list[tuple[int, int]] = []
        for d in cal.days:
            if kind == "business" and d.workday:
                windows.append((d.open + 40 * MINUTE, d.close - 40 * MINUTE - duration))
            elif kind == "night":
                if d.workday:
                    windows.append((d.start + 22 * HOUR, d.start + 28 * HOUR - duration))
                windows.append((d.start, d.start + 6 * HOUR - duration))
            elif kind == "weekend" and not d.business:
                windows.append((d.start + 10 * HOUR, d.start + 17 * HOUR - duration))
            elif kind == "before_open" and d.workday:
                windows.append((d.open - HOUR, d.open - 5 * MINUTE - duration))
            elif kind == "quiet":  # outside the working day (and its edges)
                if d.business:
                    windows.append((d.start, d.open - 90 * MINUTE - duration))
                    windows.append((d.close + 30 * MINUTE, d.end - duration))
                else:
                    windows.append((d.start, d.end - duration))
            elif kind == "closing" and d.workday:
                windows.append((d.close, d.close))
            elif kind == "any":
                windows.append((d.start, d.end - duration))
        windows = [(max(a, lo_all), min(b, hi_all)) for a, b in windows]
        windows = [w for w in windows if w[0] <= w[1]]
        if not windows:
            if kind == "weekend":
                return self.when(rng, "night", duration)
            raise NoRoom(f"the simulated period has no room for a '{kind}' scenario")
        for _ in range(500):
            a, b = rng.choice(windows)
            t = rng.randint(a, b)
            t -= t % SECOND
            if all(t + duration + 15 * MINUTE <= s.start or t >= s.end + 15 * MINUTE
                   for s in self.silences):
                return t
        raise ValueError("no free time for a scenario: too many silences for the period")

    # -- accounts -------------------------------------------------------------------------
    def roomiest(self, roles: tuple[str, ...]) -> str:
        """Of ``roles``, the one with the most accounts still free for a lifecycle change
        (so that small worlds keep enough of every role)."""
        def free(role: str) -> int:
            return sum(1 for a in self.staff if a.roles == (role,)
                       and a.user_id not in self._unusable and not self.blackouts.get(a.user_id)
                       and self.directory.stable(a.user_id, self.cal.start, self.cal.end))
        return max(roles, key=free)

    def actor(self, rng: random.Random, role: str, start: int, end: int, *,
              quiet: bool = False, lifecycle: bool = False) -> Account:
        """A stable account with exactly ``role``, free from ``start`` to ``end``; reserved.
        ``quiet``: the scenario exports or feeds a windowed rule, so the account's clean
        traffic pauses 90 minutes either side (otherwise 5 minutes). ``lifecycle``: the
        scenario changes the account's directory state (no other scenario uses it)."""
        acct = self._free(rng, role, start, end, quiet, lifecycle)
        if acct is None:
            raise ValueError(f"no free '{role}' account for a scenario; simulate more accounts "
                             "or fewer violations per rule")
        return acct

    def slot(self, rng: random.Random, role: str, kind: str = "business",
             duration: int = 5 * MINUTE, *, quiet: bool = False,
             lifecycle: bool = False) -> tuple[int, Account]:
        """A time (see :meth:`when`) and a free account of ``role`` for it; reserved."""
        for _ in range(200):
            t = self.when(rng, kind, duration)
            acct = self._free(rng, role, t, t + duration, quiet, lifecycle)
            if acct is not None:
                return t, acct
        raise ValueError(f"no free '{role}' account for a '{kind}' scenario; simulate more "
                         "accounts, more days or fewer violations per rule")

    def _free(self, rng: random.Random, role: str, start: int, end: int, quiet: bool,
              lifecycle: bool) -> Account | None:
        margin = MARGIN if quiet or lifecycle else SHORT_MARGIN
        lo, hi = start - margin, end + margin
        cands = [a for a in self.staff
                 if a.roles == (role,) and a.user_id not in self._unusable
                 and self.directory.stable(a.user_id, self.cal.start, self.cal.end)
                 and (not self.blackouts.get(a.user_id) if lifecycle else
                      all(b <= lo or a_ >= hi for a_, b in self.blackouts.get(a.user_id, ())))]
        if not cands:
            return None
        acct = rng.choice(cands)
        self.reserve(acct, start, end, quiet=quiet or lifecycle)
        if lifecycle:
            self._unusable.add(acct.user_id)
        return acct

    def reserve(self, acct: Account, start: int, end: int, *, quiet: bool = False) -> None:
        """Reserve an account this scenario already uses for one more stretch of time
        (a scenario spread over days): its clean traffic pauses around it."""
        margin = MARGIN if quiet else SHORT_MARGIN
        lo, hi = start - margin, end + margin
        self.blackouts.setdefault(acct.user_id, []).append((lo, hi))
        self._reserved.append((acct.user_id, lo, hi, margin))

    def depart(self, acct: Account, at: int) -> None:
        self.directory.add(acct.user_id, Change(at, "departed", (), acct.department, None))

    def suspend(self, acct: Account, at: int, until: int | None = None) -> None:
        self.directory.add(acct.user_id, Change(at, "suspended", acct.roles, acct.department,
                                                acct.manager))
        if until is not None:
            self.directory.add(acct.user_id, Change(until, "active", acct.roles,
                                                    acct.department, acct.manager))

    def transfer(self, acct: Account, at: int, roles: tuple[str, ...], department: str) -> None:
        self.directory.add(acct.user_id, Change(at, "transferred", roles, department,
                                                acct.manager))

    def new_hire(self, rng: random.Random, role: str, hired: int) -> Account:
        """An account whose first directory record is ``hired`` (it works from then on)."""
        dept = next(d for d in C.DEPARTMENTS if d.roles == (role,))
        idx = self._next_idx
        self._next_idx += 1
        acct = Account(idx=idx, user_id=employee_id(idx), name="New Hire", roles=(role,),
                       department=dept.name, manager=None, tz="Asia/Tokyo",
                       ip=f"10.{dept.ip_octet}.250.{idx % 200 + 20}",
                       vpn_ip=f"172.16.250.{idx % 250 + 2}", host=f"ws-{idx + 1:05d}",
                       volume=dept.volume, hired=hired)
        self.staff.append(acct)
        self.directory.hire(acct)
        self._unusable.add(acct.user_id)
        return acct

    def ghost(self, rng: random.Random, style: str = "employee") -> str:
        """A user id the directory has never seen (``employee``- or ``vendor``-like)."""
        while True:
            if style == "employee":
                uid = f"e{rng.randint(900_000, 999_999)}"
            else:
                uid = f"ext-{rng.choice(('opsvendor', 'bpo', 'audit'))}-{rng.randint(1, 99):02d}"
            if uid not in self._ghosts:
                self._ghosts.add(uid)
                return uid

    # -- subjects -------------------------------------------------------------------------
    def customers(self, rng: random.Random, k: int = 1) -> list[str]:
        """Customers the register never mentions."""
        return self.register.claim(rng, k)

    def registered(self, rng: random.Random, *records: tuple[str, int] |
                   tuple[str, int, tuple[str, ...] | None]) -> str:
        """A customer with the given register history: ``(type, effective[, purposes])``."""
        s = self.register.take(rng)
        for rec in records:
            self.register.add(s, rec[0], rec[1], rec[2] if len(rec) > 2 else None)
        return f"c-{s:07d}"

    def employee(self, rng: random.Random, k: int = 1) -> list[str]:
        return rng.sample(self.employees[: max(k, 50)], k)

    @staticmethod
    def external_ip(rng: random.Random) -> str:
        return f"{rng.choice(C.EXTERNAL_NETS)}{rng.randint(2, 250)}"

    # -- events ---------------------------------------------------------------------------
    def access(self, ms: int, who: Account | str, dataset: str, action: str,
               resource: str | None = None, categories: tuple[str, ...] = (), *,
               purpose: str | None, ids: list[str] | None = None, count: int | None = None,
               dest: dict[str, Any] | None = None, ip: str | None = None,
               host: str | None = None, anonymized: bool = False, collected: int | None = None,
               roles: list[str] | None = None, outcome: str = "success",
               seq_skip: int = 0, exact: bool = False,
               legal_basis: str | None = None) -> dict[str, Any]:
        """Plan one event. ``who``: an account, or a bare user id (then give ``ip``).
        Unless ``exact``, a sub-second jitter is added, as clean events have."""
        data: dict[str, Any] = {}
        if resource:
            data["resource"] = resource
        if categories:
            data["categories"] = list(categories)
        if ids:
            data["subject_ids"] = list(ids)
        if count is not None:
            data["subject_count"] = count
        if ids or count:
            data["records"] = count if count is not None else len(ids or ())
        if purpose is not None and data:
            data["purpose"] = purpose
        if anonymized:
            data["anonymized"] = True
        if collected is not None:
            data["collected_at"] = iso(collected, utc=True)
        if legal_basis is not None:
            data["legal_basis"] = legal_basis
        if isinstance(who, Account):
            uid, ip, host = who.user_id, ip or who.ip, host or who.host
        else:
            uid = who
        user: dict[str, Any] = {"id": uid}
        if roles is not None:
            user["roles"] = roles
        n = len(self.planned)
        if not exact:
            ms += derive(self.cfg.seed, "jitter", n) % SECOND
        ts = self.factory.floor(dataset, ms)
        eid = self._ids.make(C.DATASET_BY_NAME[dataset].id_prefix, INJECTED + n)
        ev = self.factory.event(ts, dataset, action, user, outcome=outcome, eid=eid, ip=ip,
                                host=host, data=data or None, dest=dest)
        self.planned.append((ts, n, ev))
        if seq_skip:
            self.seq_skips[eid] = seq_skip
        return ev

    def login(self, ms: int, who: Account | str, *, ip: str | None = None,
              outcome: str = "success", action: str = "login") -> dict[str, Any]:
        roles = list(who.roles) if isinstance(who, Account) else None
        return self.access(ms, who, C.IDP, action, purpose=None, ip=ip, outcome=outcome,
                           roles=roles)

    def batch_event(self, ms: int, dataset: str, rng: random.Random,
                    seq_skip: int = 0) -> dict[str, Any]:
        """An ordinary event of ``dataset``'s batch job."""
        svc = self.services[dataset]
        if dataset == C.IDP:
            return self.access(ms, svc, dataset, "login", purpose=None, seq_skip=seq_skip)
        kinds = {
            "crm.audit": ("update", "crm.customers", ("identity", "contact"), "order_fulfilment"),
            "billing.audit": ("create", "billing.invoices", ("identity", "payment"), "billing"),
            "mkt.audit": ("update", "mkt.preferences", ("preferences",), "marketing"),
            "hr.audit": ("update", "hr.employees", ("employment",), "employment_administration"),
        }
        if dataset == "dwh.audit":
            return self.access(ms, svc, dataset, "create", "dwh.events_anon",
                               ("behavior", "device"), purpose="analytics",
                               count=rng.randint(500, 5000), anonymized=True,
                               collected=ms - DAY, seq_skip=seq_skip)
        action, resource, cats, purpose = kinds[dataset]
        ids = self.employee(rng) if dataset == "hr.audit" else self.customers(rng)
        return self.access(ms, svc, dataset, action, resource, cats, purpose=purpose, ids=ids,
                           seq_skip=seq_skip)

    def expect(self, ev: dict[str, Any], rule: str, user_id: str | None = None) -> None:
        """Declare that ``ev`` completes a violation of ``rule`` (of a rule the policy leaves
        off: a line of truth that expects nothing)."""
        sc = self._scenario
        assert sc is not None
        self._expected.add(rule)
        row = {"event_id": ev["event"]["id"], "rule": rule,
               "user_id": user_id or ev["user"]["id"], "scenario": sc.name,
               "ts": ev["@timestamp"]}
        if rule in C.RULES_OFF:
            self.silent.append({**row, "expected": False, "why": "rule_off"})
        else:
            self.truth.append(row)

    def expect_obligation(self, ref: str, rule: str, user_id: str, deadline: int) -> None:
        """Declare an obligation alert: ``ref`` the record that started it
        (``directory/<user_id>/<effective>``, ``subjects/<subject>/<effective>``), ``ts``
        its deadline."""
        sc = self._scenario
        assert sc is not None
        self._expected.add(rule)
        self.truth.append({"event_id": ref, "rule": rule, "user_id": user_id,
                           "scenario": sc.name, "ts": iso(deadline, utc=True)})

    def near_miss(self, ref: str, rule: str, user_id: str, at: int) -> None:
        """A lawful case next to a violation of ``rule``: it must raise nothing."""
        sc = self._scenario
        assert sc is not None
        self.silent.append({"event_id": ref, "rule": rule, "user_id": user_id,
                            "scenario": sc.name, "ts": iso(at, utc=True), "expected": False,
                            "why": "near_miss"})
