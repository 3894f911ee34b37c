"""The detection engine: one event in (in event-time order), alerts out.

Pure: no I/O, no clock, no asyncio. ``watchdog replay`` and ``watchdog run`` both feed it, so
they raise the same alerts for the same events. The start-up code hands it its rules; what a
rule is (actions, needs, ordered, supersedes, windows, deadlines) is read off the rule.

Per event: the rules the policy runs (with commitments, exactly those they name) whose actions
and needs match; their findings, less those an exception of the policy excuses (counted and
reported through ``on_suppressed``), less those superseded by another finding on the same
event, become alerts through the one :class:`~watchdog.alerts.factory.AlertFactory`. Before
the rules, obligations whose deadline the event has passed are judged
(:mod:`watchdog.engine.obligations`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

from msgspec import UNSET

from watchdog.alerts.factory import AlertFactory
from watchdog.alerts.factory import alert_id as alert_id
from watchdog.alerts.model import Alert
from watchdog.engine.context import Context
from watchdog.engine.facts import Facts
from watchdog.engine.obligations import DueQueue
from watchdog.events import AccessEvent, AccountRecord, DirectoryRecord, SubjectRecord
from watchdog.policy.model import Policy, PolicyException, domain_in
from watchdog.rules.base import Finding, Obligation, Rule
from watchdog.rules.needs import (
    INACTIVE_ACCOUNT,
    NOTHING,
    PERSONAL,
    UNKNOWN_ACCOUNT,
    facts_of,
)
from watchdog.state.accounts import Accounts
from watchdog.state.directory import Directory
from watchdog.state.subjects import SubjectRegister

# Which rules a call of :meth:`Engine.process` runs (bits): every rule at once (replay), or
# the event-alone rules on arrival and the ordered ones on release (the daemon: alerts that
# need no other event do not wait for the reorder buffer).
ALL, ALONE, IN_ORDER = 3, 1, 2

# (directory record at the event's time or None, role names in force, fact bits)
Known = tuple[DirectoryRecord | None, tuple[str, ...], int]
Suppressed = Callable[[Alert, PolicyException], None]


def written_effective(rec: DirectoryRecord | SubjectRecord | AccountRecord) -> str:
    """``effective`` of a record as RFC 3339 when the text as written is not at hand."""
    s = rec.effective.isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


class Engine:
    def __init__(
        self,
        policy: Policy,
        pseudonymize: Callable[[str], str],
        rules: Sequence[Rule],
        *,
        facts: Facts | None = None,
    ) -> None:
        self.facts = facts if facts is not None else Facts(policy, pseudonymize)
        self.facts.policy = policy
        self.pseudonymize = pseudonymize
        self.alerts = AlertFactory(policy, pseudonymize)
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._by_id = {r.id: r for r in self.rules}
        self.obligations: tuple[Obligation, ...] = tuple(
            r for r in self.rules if isinstance(r, Obligation))
        self.due = DueQueue()
        self._dispatch: dict[tuple[str, int], tuple[Rule, ...]] = {}
        self._phase_dispatch: dict[tuple[str, int, int], tuple[Rule, ...]] = {}
        self._exceptions: dict[str, tuple[PolicyException, ...]] = {}
        self.suppressed: Counter[str] = Counter()
        self.on_suppressed: Suppressed | None = None
        # alert id -> id of the event whose processing judged the obligation (the daemon holds
        # that event's record back until the alert is sent): kept when a caller sets a dict
        self.judged_at: dict[str, str] | None = None
        self.set_policy(policy)

    # -- state -------------------------------------------------------------------------
    @property
    def policy(self) -> Policy:
        return self.facts.policy

    @property
    def directory(self) -> Directory:
        return self.facts.directory

    @property
    def register(self) -> SubjectRegister:
        return self.facts.register

    @property
    def accounts(self) -> Accounts:
        return self.facts.accounts

    def set_policy(self, policy: Policy) -> None:
        """Swap the policy (SIGHUP); windows, open obligations and state are kept."""
        self.facts.policy = policy
        self.alerts.set_policy(policy)
        self._dispatch.clear()
        self._phase_dispatch.clear()
        by_rule: dict[str, list[PolicyException]] = {}
        for x in policy.exceptions:
            by_rule.setdefault(x.rule, []).append(x)
        self._exceptions = {k: tuple(v) for k, v in by_rule.items()}

    def share_state(self, other: Engine) -> None:
        """Read ``other``'s directory, register and accounts (a second engine over the same
        stream) and open the obligations their records start, as ``other`` did."""
        f = self.facts
        f.directory, f.register, f.accounts = (other.directory, other.register,
                                               other.accounts)
        for rec, written in other.directory.records():
            self._start(rec, written)
        for srec, written in other.register.records():
            self._start(srec, written)

    def apply_directory(self, rec: DirectoryRecord, written: str | None = None) -> None:
        """``written``: ``effective`` as the record wrote it (obligation references)."""
        written = written or written_effective(rec)
        self.facts.directory.apply(rec, written)
        self._start(rec, written)

    def apply_subject(self, rec: SubjectRecord, written: str | None = None) -> None:
        written = written or written_effective(rec)
        self.facts.register.apply(rec, written)
        self._start(rec, written)

    def apply_account(self, rec: AccountRecord) -> None:
        self.facts.accounts.apply(rec)

    def _start(self, rec: DirectoryRecord | SubjectRecord, written: str) -> None:
        for i, ob in enumerate(self.obligations):
            for deadline, key in ob.start(rec, written, self.facts):
                if deadline < self.due.floor:
                    # judged before the checkpoint the state came from (its record is read
                    # again at the start): forgotten, not judged twice
                    ob.judge(key, deadline, self.facts)
                    continue
                self.due.push(deadline, i, key)

    def evict(self, before: float) -> int:
        """Forget window entries older than ``before`` (event time); returns entries dropped."""
        return sum(r.evict(before) for r in self.rules if r.windowed)

    def window_sizes(self) -> list[int]:
        """Accounts (or keys) each windowed rule keeps state for."""
        return [r.tracked() for r in self.rules if r.windowed]

    def tracked(self) -> int:
        return max(self.window_sizes(), default=0)

    def forgetting(self) -> dict[str, tuple[int, int, int]]:
        """What the rules keep of keys that come from events, and forgot so far: ``windows``
        (accounts' windows, summed over the windowed rules) and ``datasets`` (``log_gap``),
        each (kept, forgotten idle, dropped past a cap)."""
        out: dict[str, tuple[int, int, int]] = {}
        for r in self.rules:
            kind = "windows" if r.windowed else "datasets" if r.id == "log_gap" else None
            if kind is None:
                continue
            kept, (idle, capped) = r.tracked(), r.forgetting()
            k0, i0, c0 = out.get(kind, (0, 0, 0))
            out[kind] = (k0 + kept, i0 + idle, c0 + capped)
        return out

    def open_obligations(self) -> dict[str, int]:
        """Open (started, not yet judged) obligations per rule id."""
        counts = self.due.open_by_rule()
        return {ob.id: counts.get(i, 0) for i, ob in enumerate(self.obligations)}

    # -- detection ---------------------------------------------------------------------
    def _rules_for(self, action: str, facts: int) -> tuple[Rule, ...]:
        key = (action, facts)
        rules = self._dispatch.get(key)
        if rules is None:
            policy = self.policy
            rules = tuple(r for r in self.rules
                          if (r.actions is None or action in r.actions)
                          and r.needs & facts == r.needs and policy.runs(r.id)
                          and r.enabled(policy))
            self._dispatch[key] = rules
        return rules

    def _rules_in(self, action: str, facts: int, phase: int) -> tuple[Rule, ...]:
        key = (action, facts, phase)
        rules = self._phase_dispatch.get(key)
        if rules is None:
            ordered = phase == IN_ORDER
            rules = tuple(r for r in self._rules_for(action, facts) if r.ordered is ordered)
            self._phase_dispatch[key] = rules
        return rules

    def known(self, ev: AccessEvent, t: float) -> Known:
        """What the engine looks up about an event before any rule: its account's directory
        record at ``t``, the role names in force and the event's facts. The daemon's detector
        keeps it from the event's arrival to its release, so it is looked up once."""
        user = ev.user
        actor = self.facts.directory.at(user.id, t)
        register = self.facts.register
        if actor is None:
            return actor, user.roles or (), facts_of(ev, register) | UNKNOWN_ACCOUNT
        role_names = actor.roles if actor.roles is not UNSET else (user.roles or ())
        account = NOTHING if actor.status == "active" else INACTIVE_ACCOUNT
        return actor, role_names, facts_of(ev, register) | account

    def process(self, ev: AccessEvent, t: float, phase: int = ALL,
                known: Known | None = None, variant: str | None = None) -> list[Alert]:
        """``variant``: the event reused a known id with other content; its findings' keys
        carry this digest of its content (their alert ids differ from the first version's)."""
        f = self.facts
        register = f.register
        if known is None:  # inline rather than a call to known(): replay runs this per event
            user = ev.user
            actor = f.directory.at(user.id, t)
            if actor is None:
                role_names = user.roles or ()
                account = UNKNOWN_ACCOUNT
            else:
                role_names = actor.roles if actor.roles is not UNSET else (user.roles or ())
                account = NOTHING if actor.status == "active" else INACTIVE_ACCOUNT
            facts = facts_of(ev, register) | account
        else:
            actor, role_names, facts = known
        due = t > self.due.next and phase != ALONE
        action = ev.event.action
        if phase == ALL:
            rules = self._dispatch.get((action, facts))
            if rules is None:
                rules = self._rules_for(action, facts)
        else:
            rules = self._phase_dispatch.get((action, facts, phase))
            if rules is None:
                rules = self._rules_in(action, facts, phase)
        if not rules and not due:
            return []
        policy = f.policy
        ctx = Context(ev, t, policy, actor, policy.grants(role_names), bool(facts & PERSONAL),
                      register, f.accounts)
        out = self._judge_due(ctx) if due else []
        findings: list[Finding] | None = None  # most events find nothing: no list for them
        for rule in rules:
            found = rule.check(ctx)
            if found:
                if findings is None:
                    findings = []
                findings.extend(found)
        if findings is None:
            return out
        if self._exceptions:
            findings = [x for x in findings if not self._excused(x, ctx)]
        if len(findings) > 1:
            by_id = self._by_id
            dropped = {r for x in findings for r in by_id[x.rule].supersedes}
            if dropped:
                findings = [x for x in findings if x.rule not in dropped]
        if variant is not None:
            findings = [replace(x, key=f"{x.key}~{variant}") for x in findings]
        dataset = ev.event.dataset
        labels = {"dataset": dataset} if dataset else None
        out.extend(self._alert(x, t, x.user_id or ev.user.id, labels) for x in findings)
        return out

    def _alert(self, f: Finding, t: float, user_id: str,
               labels: dict[str, str] | None = None) -> Alert:
        rule = self._by_id[f.rule]
        return self.alerts.build(f, t, user_id, default_severity=rule.severity,
                                 commitment=rule.commitment, labels=labels)

    # -- obligations and exceptions -------------------------------------------------------
    def _judge_due(self, ctx: Context) -> list[Alert]:
        out: list[Alert] = []
        runs = self.policy.runs
        for deadline, i, key in self.due.due(ctx.t):
            ob = self.obligations[i]
            if not runs(ob.id):
                continue
            for f in ob.judge(key, deadline, self.facts):
                alert = self._alert(f, deadline, f.user_id or "")
                if self._excused_obligation(alert, deadline):
                    continue
                if self.judged_at is not None:
                    self.judged_at[alert.alert_id] = ctx.ev.event.id
                out.append(alert)
        return out

    def _excused_obligation(self, alert: Alert, deadline: float) -> bool:
        """An obligation alert has no access event: only an exception without matchers
        excuses it (its ``until`` compared with the deadline)."""
        for x in self._exceptions.get(alert.rule, ()):
            if (x.user_id is None and x.resource is None and x.destination_domain is None
                    and deadline < x.until):
                self._suppress(alert, x)
                return True
        return False

    def _excused(self, f: Finding, ctx: Context) -> bool:
        excs = self._exceptions.get(f.rule)
        if not excs:
            return False
        ev, t = ctx.ev, ctx.t
        for x in excs:
            if t >= x.until:
                continue
            if x.user_id is not None and x.user_id != ev.user.id:
                continue
            if x.resource is not None and x.resource != ev.data.resource:
                continue
            if x.destination_domain is not None:
                dom = ev.destination.domain if ev.destination else None
                if not dom or not domain_in(dom, (x.destination_domain,)):
                    continue
            dataset = ev.event.dataset
            self._suppress(self._alert(f, t, f.user_id or ev.user.id,
                                       {"dataset": dataset} if dataset else None), x)
            return True
        return False

    def _suppress(self, alert: Alert, x: PolicyException) -> None:
        self.suppressed[alert.rule] += 1
        if self.on_suppressed is not None:
            self.on_suppressed(alert, x)
