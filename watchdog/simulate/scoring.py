"""Precision and recall of alerts against a simulated world's ground truth, per rule.

An alert matches a truth line when the rules are equal and the truth's event is the event that
completed the alert (the last of ``event_ids``) — or, for windowed alerts, any of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


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
    expected: dict[tuple[str, str], bool] = {}
    for t in truth:
        key = (t["rule"], t["event_id"])
        if key not in expected:
            expected[key] = False
            scores.setdefault(t["rule"], RuleScore(t["rule"])).expected += 1
    for a in alerts:
        s = scores.setdefault(a["rule"], RuleScore(a["rule"]))
        s.alerts += 1
        hit = next((k for e in reversed(a["event_ids"])
                    if (k := (a["rule"], e)) in expected and not expected[k]), None)
        if hit is None:
            s.unexpected.append(a["event_ids"][-1])
        else:
            expected[hit] = True
            s.true_positives += 1
    for (rule, eid), found in expected.items():
        if not found:
            scores[rule].missed.append(eid)
    return dict(sorted(scores.items()))


def table(scores: dict[str, RuleScore]) -> str:
    lines = [f"{'rule':<24} {'expected':>8} {'alerts':>7} {'precision':>9} {'recall':>7}"]
    for s in scores.values():
        lines.append(f"{s.rule:<24} {s.expected:>8} {s.alerts:>7} {s.precision:>9.3f} "
                     f"{s.recall:>7.3f}")
    return "\n".join(lines)
