"""Metrics for the analyst's view: which promises were broken, and by which accounts.

- ``watchdog_commitment_info{commitment, clause}`` = 1 for each commitment of the policy in
  force: the clause's words, looked up by the dashboard through the ``commitment`` id (a label
  join), so that the counters carry short ids only. A version 1 policy (``clauses`` per rule)
  has one pseudo-commitment per cited rule, named by the rule id.
- ``watchdog_commitment_alerts_total{commitment}``: alerts of the rules each commitment names
  (an alert of a rule two commitments name counts for both), created at 0 for every
  commitment so that ``increase()`` counts the first alert too.
- ``watchdog_account_alerts_total{account}``: alerts per staff account, as a keyed-hash
  pseudonym (``a-`` + 16 hex, the key of the subject pseudonyms), never the account id. At
  most :data:`MAX_ACCOUNTS` accounts a UTC day, then ``other``; the set starts afresh each
  day (the series are dropped: ``increase()`` reads the drop as a counter reset), so the
  number of series stays bounded however many accounts ever misbehave.

The policy, the pseudonymizer and the clock come from the daemon; nothing here reads files.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from watchdog.policy.model import Policy

MAX_ACCOUNTS = 100
CLAUSE_CHARS = 120
OTHER = "other"


def clause_label(text: str) -> str:
    """Clause words fit for a label value: one line, collapsed spaces, bounded length."""
    words = " ".join(text.split())
    return words if len(words) <= CLAUSE_CHARS else words[:CLAUSE_CHARS - 1] + "…"


def commitments_of(policy: Policy) -> dict[str, tuple[str, tuple[str, ...]]]:
    """commitment id -> (clause words, rules it names)."""
    if policy.commitments:
        return {c.id: (c.citation, c.rules) for c in policy.commitments}
    return {rule: (text, (rule,)) for rule, text in policy.clauses.items()}


class PromiseMetrics:
    def __init__(self, registry: CollectorRegistry,
                 clock: Callable[[], float] = time.time) -> None:
        self.info = Gauge("watchdog_commitment_info", "The policy's commitments and their "
                          "clause (value 1; join on commitment)", ["commitment", "clause"],
                          registry=registry)
        self.alerts = Counter("watchdog_commitment_alerts_total", "Alerts of the rules a "
                              "commitment names", ["commitment"], registry=registry)
        self.accounts = Counter("watchdog_account_alerts_total", "Alerts per account "
                                f"(pseudonymised; at most {MAX_ACCOUNTS} a UTC day, then "
                                f"'{OTHER}')", ["account"], registry=registry)
        self._clock = clock
        self._by_rule: dict[str, list[Counter]] = {}
        self._pseudonymize: Callable[[str], str] | None = None
        self._accounts: dict[str, Counter] = {}
        self._day = -1

    def set_policy(self, policy: Policy, pseudonymize: Callable[[str], str] | None) -> None:
        """At start and at each reload: the commitments in force (old ones' info goes; their
        counters stay, so a range spanning the reload still counts what they saw)."""
        self._pseudonymize = pseudonymize
        self.info.clear()
        by_rule: dict[str, list[Counter]] = {}
        for cid, (clause, rules) in commitments_of(policy).items():
            self.info.labels(cid, clause_label(clause)).set(1)
            child = self.alerts.labels(cid)  # exists at 0 from now on
            for rule in rules:
                by_rule.setdefault(rule, []).append(child)
        self._by_rule = by_rule

    def count(self, rule: str, user_id: str) -> None:
        for commitment in self._by_rule.get(rule, ()):
            commitment.inc()
        if self._pseudonymize is None or not user_id or rule == "log_gap":
            return  # log_gap's user_id is a dataset, not an account
        day = int(self._clock() // 86400)
        if day != self._day:
            for label in list(self._accounts):
                self.accounts.remove(label)
            self._accounts.clear()
            self._day = day
        label = "a-" + self._pseudonymize(user_id).removeprefix("s-")
        child = self._accounts.get(label)
        if child is None:
            if len(self._accounts) >= MAX_ACCOUNTS:
                label = OTHER
                child = self._accounts.get(OTHER)
            if child is None:
                child = self._accounts[label] = self.accounts.labels(label)
        child.inc()
