"""Precision and recall of alerts against a simulated world's ground truth, per rule.

An alert matches a truth line when the rules are equal and the truth's event is the event that
completed the alert (the last of ``event_ids``) — or, for windowed alerts, any of them. An
obligation's alert (contract 1.1) names a record, not an event, and its subject reference is a
pseudonym the truth cannot know: it matches on rule, ``user_id`` and ``ts`` (the deadline).
Truth lines with ``"expected": false`` (near misses, rules the policy leaves off) are not
expected alerts: :func:`silent_hits` says which of them an alert fired on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

OBLIGATION_REFS = ("directory/", "subjects/")


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def _obligation_key(row: dict[str, Any]) -> tuple[str, str, float] | None:
    ids = row.get("event_ids") or [row.get("event_id", "")]
    if not str(ids[-1]).startswith(OBLIGATION_REFS):
        return None
    return row["rule"], row["user_id"], _epoch(row["ts"])


def _candidates(alert: dict[str, Any]) -> list[Any]:
    """The truth keys ``alert`` could match, best first."""
    keys: list[Any] = [(alert["rule"], e) for e in reversed(alert["event_ids"])]
    ob = _obligation_key(alert)
    return [*keys, ob] if ob is not None else keys


@dataclass
class RuleScore:
    rule: str
    expected: int = 0
    alerts: int = 0
    true_positives: int = 0
    missed: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_positives / self.alerts if self.alerts else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.expected if self.expected else 1.0


def score(truth: Iterable[dict[str, Any]], alerts: Iterable[dict[str, Any]],
          rules: Iterable[str] | None = None) -> dict[str, RuleScore]:
    """Per rule: expected (truth lines), alerts raised, matches, and what was missed or extra."""
    scores: dict[str, RuleScore] = {r: RuleScore(r) for r in rules or ()}
    expected: dict[Any, bool] = {}
    for t in truth:
        if t.get("expected", True) is False:
            continue
        key = _obligation_key(t) or (t["rule"], t["event_id"])
        if key not in expected:
            expected[key] = False
            scores.setdefault(t["rule"], RuleScore(t["rule"])).expected += 1
    for a in alerts:
        s = scores.setdefault(a["rule"], RuleScore(a["rule"]))
        s.alerts += 1
        hit = next((k for k in _candidates(a) if expected.get(k) is False), None)
        if hit is None:
            s.unexpected.append(a["event_ids"][-1])
        else:
            expected[hit] = True
            s.true_positives += 1
    for key, found in expected.items():
        if not found:
            scores[key[0]].missed.append(str(key[1]))
    return dict(sorted(scores.items()))


def silent_hits(truth: Iterable[dict[str, Any]], alerts: Iterable[dict[str, Any]],
                ) -> list[dict[str, Any]]:
    """The ``"expected": false`` truth lines some alert of their rule fired on."""
    silent = {(_obligation_key(t) or (t["rule"], t["event_id"])): t
              for t in truth if t.get("expected", True) is False}
    fired = []
    for a in alerts:
        hit = next((k for k in _candidates(a) if k in silent), None)
        if hit is not None:
            fired.append(silent.pop(hit))
    return fired


def table(scores: dict[str, RuleScore]) -> str:
    lines = [f"{'rule':<24} {'expected':>8} {'alerts':>7} {'precision':>9} {'recall':>7}"]
    for s in scores.values():
        lines.append(f"{s.rule:<24} {s.expected:>8} {s.alerts:>7} {s.precision:>9.3f} "
                     f"{s.recall:>7.3f}")
    return "\n".join(lines)
