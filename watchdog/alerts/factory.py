"""The one place an alert is built: from a rule's finding, for the rules, the obligations and
the anomaly stage alike.

It decides what every alert shares: the severity (the finding's, else the policy's override,
else the rule's default), the ``clauses`` (every commitment naming the rule), the summary's
"Breaks: ..." (the first clause, else the rule's commitment in words), the subject pseudonyms
(keyed hashes, never raw ids), the ``ts`` (UTC with ``Z``) and the stable ``alert_id``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from msgspec import UNSET

from watchdog.alerts.model import Alert, AlertSubjects, rfc3339
from watchdog.policy.model import Policy
from watchdog.rules.base import Finding

MAX_PSEUDONYMS = 50  # per alert; the count is always exact


def alert_id(rule: str, user_id: str, event_id: str, key: str) -> str:
    """Stable id: the same violation found twice (replay, redelivery) gets the same id; the
    rule, the account (or dataset, resource) and the completing event (or record reference)
    with the finding's key tell two different violations apart."""
    h = hashlib.blake2b(f"{rule}\x1f{user_id}\x1f{event_id}\x1f{key}".encode(), digest_size=8)
    return f"{rule}:{h.hexdigest()}"


class AlertFactory:
    __slots__ = ("_clauses", "_policy", "pseudonymize")

    def __init__(self, policy: Policy, pseudonymize: Callable[[str], str]) -> None:
        self._policy = policy
        self.pseudonymize = pseudonymize
        self._clauses: dict[str, tuple[str, ...]] = {}

    def set_policy(self, policy: Policy) -> None:
        self._policy = policy
        self._clauses.clear()

    def clauses(self, rule: str) -> tuple[str, ...]:
        clauses = self._clauses.get(rule)
        if clauses is None:
            clauses = self._clauses[rule] = self._policy.clauses_for(rule)
        return clauses

    def severity(self, rule: str, default: str) -> str:
        return self._policy.severities.get(rule) or default

    def build(self, f: Finding, t: float, user_id: str, *, default_severity: str,
              commitment: str, labels: dict[str, str] | None = None) -> Alert:
        """``t``: the alert's event time (the completing event's, or an obligation's
        deadline); ``user_id``: the finding's own, else the event's account; ``labels``: put
        before the finding's (the event's dataset)."""
        clauses = self.clauses(f.rule)
        severity = f.severity or self.severity(f.rule, default_severity)
        breaks = clauses[0] if clauses else commitment
        pseudonymize = self.pseudonymize
        pseudonyms = tuple(sorted({pseudonymize(s) for s in f.subject_ids}))
        labels = dict(f.labels) if labels is None else {**labels, **f.labels}
        return Alert(
            alert_id=alert_id(f.rule, user_id, f.event_ids[-1], f.key),
            rule=f.rule,
            severity=severity,
            ts=rfc3339(t),
            user_id=user_id,
            event_ids=f.event_ids,
            summary=f"{f.summary}. Breaks: {breaks}",
            subjects=AlertSubjects(max(f.subject_count, len(f.subject_ids)),
                                   pseudonyms[:MAX_PSEUDONYMS]),
            clauses=clauses,
            score=UNSET if f.score is None else f.score,
            explanation=UNSET if f.explanation is None else f.explanation,
            labels=labels,
        )
