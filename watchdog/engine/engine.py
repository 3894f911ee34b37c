"""The detection engine: one event in (in event-time order), alerts out.

Pure: no I/O, no clock, no asyncio. ``watchdog replay`` and ``watchdog run`` both feed it, so
they raise the same alerts for the same events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from msgspec import UNSET

from watchdog.alerts.model import Alert, AlertSubjects, rfc3339
from watchdog.engine.context import Context
from watchdog.events import AccessEvent, DirectoryRecord, SubjectRecord
from watchdog.policy.model import Policy
from watchdog.rules import ORDERED, SUPERSEDES, default_rules
from watchdog.rules.base import Finding, Rule
from watchdog.rules.needs import (
    INACTIVE_ACCOUNT,
    NOTHING,
    PERSONAL,
    UNKNOWN_ACCOUNT,
    facts_of,
)
from watchdog.state.directory import Directory
from watchdog.state.subjects import SubjectRegister

MAX_PSEUDONYMS = 50  # per alert; the count is always exact

# Which rules a call of :meth:`Engine.process` runs (bits): every rule at once (replay), or
# the event-alone rules on arrival and the ordered ones on release (the daemon: alerts that
# need no other event do not wait for the reorder buffer).
ALL, ALONE, IN_ORDER = 3, 1, 2

# (directory record at the event's time or None, role names in force, fact bits)
Known = tuple[DirectoryRecord | None, tuple[str, ...], int]


def alert_id(rule: str, user_id: str, event_id: str, key: str) -> str:
    """Stable id: the same violation found twice (replay, redelivery) gets the same id."""
    h = hashlib.blake2b(f"{rule}\x1f{user_id}\x1f{event_id}\x1f{key}".encode(), digest_size=8)
    return f"{rule}:{h.hexdigest()}"


class Engine:
    def __init__(
        self,
        policy: Policy,
        pseudonymize: Callable[[str], str],
        rules: Sequence[Rule] | None = None,
    ) -> None:
        self.policy = policy
        self.pseudonymize = pseudonymize
        self.directory = Directory()
        self.register = SubjectRegister()
        self.rules: tuple[Rule, ...] = tuple(rules if rules is not None else default_rules())
        self._dispatch: dict[tuple[str, int], tuple[Rule, ...]] = {}
        self._phase_dispatch: dict[tuple[str, int, int], tuple[Rule, ...]] = {}
        self._clause_cache: dict[str, tuple[str, ...]] = {}

    # -- state -------------------------------------------------------------------------
    def set_policy(self, policy: Policy) -> None:
        """Swap the policy (SIGHUP); windows and directory state are kept."""
        self.policy = policy
        self._clause_cache.clear()

    def apply_directory(self, rec: DirectoryRecord) -> None:
        self.directory.apply(rec)

    def apply_subject(self, rec: SubjectRecord) -> None:
        self.register.apply(rec)

    def evict(self, before: float) -> int:
        """Forget window entries older than ``before`` (event time); returns entries dropped."""
        return sum(r.evict(before) for r in self.rules if hasattr(r, "evict"))

    def window_sizes(self) -> list[int]:
        """Accounts (or keys) each windowed rule keeps state for."""
        return [r.tracked() for r in self.rules if hasattr(r, "tracked")]

    def tracked(self) -> int:
        return max(self.window_sizes(), default=0)

    # -- detection ---------------------------------------------------------------------
    def _rules_for(self, action: str, facts: int) -> tuple[Rule, ...]:
        key = (action, facts)
        rules = self._dispatch.get(key)
        if rules is None:
            rules = tuple(r for r in self.rules
                          if (r.actions is None or action in r.actions)
                          and r.needs & facts == r.needs)
            self._dispatch[key] = rules
        return rules

    def _rules_in(self, action: str, facts: int, phase: int) -> tuple[Rule, ...]:
        key = (action, facts, phase)
        rules = self._phase_dispatch.get(key)
        if rules is None:
            ordered = phase == IN_ORDER
            rules = tuple(r for r in self._rules_for(action, facts)
                          if (r.id in ORDERED) is ordered)
            self._phase_dispatch[key] = rules
        return rules

    def known(self, ev: AccessEvent, t: float) -> Known:
        """What the engine looks up about an event before any rule: its account's directory
        record at ``t``, the role names in force and the event's facts. The daemon's detector
        keeps it from the event's arrival to its release, so it is looked up once."""
        user = ev.user
        actor = self.directory.at(user.id, t)
        if actor is None:
            return actor, user.roles or (), facts_of(ev, self.register) | UNKNOWN_ACCOUNT
        role_names = actor.roles if actor.roles is not UNSET else (user.roles or ())
        account = NOTHING if actor.status == "active" else INACTIVE_ACCOUNT
        return actor, role_names, facts_of(ev, self.register) | account

    def process(self, ev: AccessEvent, t: float, phase: int = ALL,
                known: Known | None = None) -> list[Alert]:
        if known is None:  # inline rather than a call to known(): replay runs this per event
            user = ev.user
            actor = self.directory.at(user.id, t)
            if actor is None:
                role_names = user.roles or ()
                account = UNKNOWN_ACCOUNT
            else:
                role_names = actor.roles if actor.roles is not UNSET else (user.roles or ())
                account = NOTHING if actor.status == "active" else INACTIVE_ACCOUNT
            facts = facts_of(ev, self.register) | account
        else:
            actor, role_names, facts = known
        register = self.register
        action = ev.event.action
        if phase == ALL:
            rules = self._dispatch.get((action, facts))
            if rules is None:
                rules = self._rules_for(action, facts)
        else:
            rules = self._phase_dispatch.get((action, facts, phase))
            if rules is None:
                rules = self._rules_in(action, facts, phase)
        if not rules:
            return []
        policy = self.policy
        ctx = Context(ev, t, policy, actor, policy.grants(role_names), bool(facts & PERSONAL),
                      register)
        findings: list[Finding] | None = None  # most events find nothing: no list for them
        for rule in rules:
            found = rule.check(ctx)
            if found:
                if findings is None:
                    findings = []
                findings.extend(found)
        if findings is None:
            return []
        if len(findings) > 1:
            dropped = {r for f in findings for r in SUPERSEDES.get(f.rule, ())}
            if dropped:
                findings = [f for f in findings if f.rule not in dropped]
        return [self._alert(f, ctx) for f in findings]

    def _alert(self, f: Finding, ctx: Context) -> Alert:
        rule = next(r for r in self.rules if r.id == f.rule)
        policy = self.policy
        severity = f.severity or policy.severities.get(f.rule) or rule.severity
        clauses = self._clause_cache.get(f.rule)
        if clauses is None:
            clauses = policy.clauses_for(f.rule)
            self._clause_cache[f.rule] = clauses
        commitment = clauses[0] if clauses else rule.commitment
        pseudonyms = tuple(sorted({self.pseudonymize(s) for s in f.subject_ids}))
        labels = {"dataset": ctx.ev.event.dataset} if ctx.ev.event.dataset else {}
        labels.update(f.labels)
        user_id = f.user_id or ctx.user_id
        return Alert(
            alert_id=alert_id(f.rule, user_id, f.event_ids[-1], f.key),
            rule=f.rule,
            severity=severity,
            ts=rfc3339(ctx.t),
            user_id=user_id,
            event_ids=f.event_ids,
            summary=f"{f.summary}. Breaks: {commitment}",
            subjects=AlertSubjects(max(f.subject_count, len(f.subject_ids)),
                                   pseudonyms[:MAX_PSEUDONYMS]),
            clauses=clauses,
            score=UNSET if f.score is None else f.score,
            explanation=UNSET if f.explanation is None else f.explanation,
            labels=labels,
        )
