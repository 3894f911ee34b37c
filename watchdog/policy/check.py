"""What ``watchdog check-policy`` judges, as pure functions of a policy and its text.

- Quotes: every commitment's ``quote`` must occur in the organisation's own privacy policy
  text (contract 1.1: both sides after Unicode NFKC, lower-casing and collapsing white space),
  so that an alert never cites words the company did not write.
- Purposes: a purpose is declared by the roles that grant it. A purpose that processors,
  ``category_purposes``, ``consent_purposes`` or ``minor_allowed_purposes`` name but no role
  grants is almost always a misspelling (``customer_suport``): events carrying it would be
  ``purpose_violation`` anyway, so the entry approves, restricts or allows nothing. Two
  purposes a single typo apart (one edit in a long word) are reported for the same reason.
  These are check-policy's own strictness: the daemon still loads such a policy (the contract
  calls it valid, and its own example names purposes no role grants).
- The matrix: which rules each commitment turns on, and which rules are off.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from watchdog.policy.model import Policy
from watchdog.policy.rule_ids import CONTRACT_RULE_IDS

_SPACE = re.compile(r"\s+")
# how alike two purpose names must be to count as one misspelt (difflib ratio): one wrong,
# missing or extra letter in a word of ten or more letters
_TYPO_RATIO = 0.9
# Thresholds whose 0 means something: no grace after a restriction, revocation due at once
# ("immediately invalidating"), every export counts as bulk. Any other 0 switches its rule off
# (an empty re-identification window) or makes it fire on everything (every login "expired",
# every source "silent").
_ZERO_MEANS_SOMETHING = frozenset({"restriction_grace_hours", "revocation_minutes",
                                   "bulk_export_subjects", "bulk_export_subjects_per_hour"})


def normalise(text: str) -> str:
    """The contract's comparison form: NFKC, lower case, white space runs as one space."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def missing_quotes(policy: Policy, text: str) -> list[str]:
    """One problem per commitment whose quote does not occur in ``text``."""
    haystack = normalise(text)
    return [f"commitments[{i}] ({c.id}): quote not found in the policy text: {c.quote!r}"
            for i, c in enumerate(policy.commitments)
            if c.quote is not None and normalise(c.quote) not in haystack]


def unquoted(policy: Policy) -> list[str]:
    """Ids of the commitments that carry no quote (allowed; nothing to check)."""
    return [c.id for c in policy.commitments if not c.quote]


def _purposes(value: Any) -> list[str]:
    return [p for p in value if isinstance(p, str)] if isinstance(value, list) else []


def purpose_problems(doc: dict[str, Any]) -> list[str]:
    """Purposes that no role grants, and purpose names a single typo apart."""
    roles = doc.get("roles")
    roles = roles if isinstance(roles, dict) else {}
    granted: dict[str, str] = {}  # purpose -> the first role granting it
    for name, role in roles.items():
        for p in _purposes(role.get("purposes") if isinstance(role, dict) else None):
            granted.setdefault(p, name)
    uses: list[tuple[str, list[str]]] = []
    processors = doc.get("processors")
    for i, proc in enumerate(processors if isinstance(processors, list) else ()):
        if isinstance(proc, dict):
            uses.append((f"processors[{i}].purposes", _purposes(proc.get("purposes"))))
    cat_purposes = doc.get("category_purposes")
    for cat, ps in (cat_purposes.items() if isinstance(cat_purposes, dict) else ()):
        uses.append((f"category_purposes.{cat}", _purposes(ps)))
    for key in ("consent_purposes", "minor_allowed_purposes"):
        uses.append((key, _purposes(doc.get(key))))

    out = []
    for path, purposes in uses:
        for p in purposes:
            if p not in granted:
                near = difflib.get_close_matches(p, sorted(granted), n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                out.append(f"{path}: purpose '{p}' is granted by no role{hint}")
    names = sorted(granted)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if difflib.SequenceMatcher(None, a, b).ratio() >= _TYPO_RATIO:
                out.append(f"roles.{granted[b]}.purposes: purpose '{b}' is one typo from "
                           f"'{a}' (roles.{granted[a]}): misspelt? (rename one if both are "
                           "meant)")
    return out


def threshold_problems(doc: dict[str, Any]) -> list[str]:
    """Zero thresholds that switch a rule off or make it fire on everything (the loader
    already refuses negative ones)."""
    thresholds = doc.get("thresholds")
    return [f"thresholds.{key}: 0 switches its rule off or makes it fire on everything; "
            "must be more than 0"
            for key, value in (thresholds.items() if isinstance(thresholds, dict) else ())
            if key not in _ZERO_MEANS_SOMETHING and value == 0 and not isinstance(value, bool)]


@dataclass(frozen=True, slots=True)
class RuleMatrix:
    """Commitments -> rules, and the rules each policy leaves off."""

    # (id, clause, quote, rules) of each commitment, in the policy's order
    commitments: tuple[tuple[str, str, str | None, tuple[str, ...]], ...]
    on: dict[str, tuple[str, ...]]  # rule -> ids of the commitments turning it on
    off: tuple[str, ...]
    version: str  # "1.1" (commitments) or "1" (clauses: every rule runs)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "commitments": [{"id": i, "clause": c, "quote": q, "rules": list(r)}
                            for i, c, q, r in self.commitments],
            "rules_on": {rule: list(ids) for rule, ids in self.on.items()},
            "rules_off": list(self.off),
        }


def rule_matrix(policy: Policy, known: tuple[str, ...] = CONTRACT_RULE_IDS) -> RuleMatrix:
    """Which of the ``known`` rules run under ``policy``, and why."""
    if not policy.commitments:
        on: dict[str, tuple[str, ...]] = {
            rule: (f"clauses.{rule}",) if rule in policy.clauses else () for rule in known}
        return RuleMatrix((), on, (), "1")
    on = {rule: tuple(c.id for c in policy.commitments if rule in c.rules)
          for rule in known if policy.runs(rule)}
    return RuleMatrix(
        tuple((c.id, c.clause, c.quote, c.rules) for c in policy.commitments),
        on, tuple(r for r in known if not policy.runs(r)), "1.1")
