"""Analysts' labels on alerts, and what a false positive damps (pure: no I/O).

A label says of one alert (by its id) that it was a ``false_positive`` or a
``true_positive``. It names the account by its keyed-hash pseudonym and the **pattern** the
alert was about, as behaviours:

- a per-window ``anomaly`` alert: its drivers' behaviours (``exports_24h``, ...);
- a person-level risk alert: the behaviours of its contributions and ``rule:<id>`` for the
  rule alerts among them;
- a rule alert: ``rule:<id>``.

A false positive **damps** its pattern for that account from just after the alert's event
time for ``damp_days`` days of event time: a per-window alert whose behaviours are all in the
pattern is not raised, and such windows (or such rule alerts) add nothing to the account's
risk. Rule alerts themselves are never damped: they are the policy's promises (an exception
in the policy excuses those). In retraining (:mod:`watchdog.anomaly.retrain`) a false
positive's windows are no longer left out as "near an alert", so the model learns them as
normal; a true positive's windows are left out even when no rule alert was near.

The labels file is a hash-chained audit trail (:mod:`watchdog.audit`), one entry per label,
the later label of the same alert winning; see :mod:`watchdog.anomaly.labels_file`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KIND = "label"
VERDICTS = ("false_positive", "true_positive")
DEFAULT_DAMP_DAYS = 14.0
MAX_NOTE = 500
DAY = 86400.0


@dataclass(frozen=True)
class Label:
    alert_id: str
    verdict: str  # "false_positive" | "true_positive"
    rule: str
    account: str  # the account's pseudonym (keyed hash), never its id
    behaviours: tuple[str, ...]
    alert_time: float  # the alert's event time
    damp_days: float
    labelled_at: str  # wall time of the label (RFC 3339)
    note: str = ""

    @property
    def damps_until(self) -> float:
        return self.alert_time + self.damp_days * DAY

    def to_entry(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": KIND, "label": self.verdict, "alert_id": self.alert_id, "rule": self.rule,
            "account": self.account, "behaviours": list(self.behaviours),
            "alert_time": _rfc3339(self.alert_time), "damp_days": self.damp_days,
            "labelled_at": self.labelled_at,
        }
        if self.note:
            doc["note"] = self.note
        return doc

    @classmethod
    def from_entry(cls, doc: Mapping[str, Any]) -> Label:
        """Raises ValueError (one line) for an entry that is not a valid label."""
        try:
            verdict = str(doc["label"])
            if verdict not in VERDICTS:
                raise ValueError(f"label {verdict!r}: not one of {', '.join(VERDICTS)}")
            behaviours = doc.get("behaviours", [])
            if not isinstance(behaviours, list) or not all(isinstance(b, str)
                                                           for b in behaviours):
                raise ValueError("behaviours: not a list of strings")
            damp = float(doc.get("damp_days", DEFAULT_DAMP_DAYS))
            if not 0 <= damp <= 3650:
                raise ValueError(f"damp_days {damp}: not between 0 and 3650")
            return cls(str(doc["alert_id"]), verdict, str(doc["rule"]), str(doc["account"]),
                       tuple(behaviours), parse_time(str(doc["alert_time"])), damp,
                       str(doc.get("labelled_at", "")), str(doc.get("note", ""))[:MAX_NOTE])
        except KeyError as err:
            raise ValueError(f"a label without {err.args[0]}") from None
        except (TypeError, ValueError) as err:
            raise ValueError(str(err).splitlines()[0] if str(err) else "a malformed label"
                             ) from None


class Labels:
    """The labels in force: the latest per alert id, and the damping they imply."""

    def __init__(self, labels: Iterable[Label]) -> None:
        latest: dict[str, Label] = {}
        for lab in labels:
            latest[lab.alert_id] = lab
        self.by_alert = latest
        # account pseudonym -> (pattern, from, until) of its false positives
        self._damp: dict[str, list[tuple[frozenset[str], float, float]]] = {}
        for lab in latest.values():
            if lab.verdict == "false_positive" and lab.behaviours and lab.damp_days > 0:
                self._damp.setdefault(lab.account, []).append(
                    (frozenset(lab.behaviours), lab.alert_time, lab.damps_until))

    @classmethod
    def empty(cls) -> Labels:
        return cls(())

    def __len__(self) -> int:
        return len(self.by_alert)

    def __bool__(self) -> bool:
        return bool(self.by_alert)

    def damped(self, account: str, behaviours: Sequence[str], t: float) -> bool:
        """Whether a false positive of ``account`` (pseudonym) damps ``behaviours`` at event
        time ``t``: every behaviour in its pattern, ``t`` after its alert and within
        ``damp_days``."""
        entries = self._damp.get(account)
        if not entries or not behaviours:
            return False
        return any(start < t <= until and pattern.issuperset(behaviours)
                   for pattern, start, until in entries)

    def ids(self, verdict: str) -> set[str]:
        return {a for a, lab in self.by_alert.items() if lab.verdict == verdict}

    def of_verdict(self, verdict: str) -> list[Label]:
        return [lab for lab in self.by_alert.values() if lab.verdict == verdict]


def behaviours_of(alert: Mapping[str, Any]) -> tuple[str, ...]:
    """The pattern an alert document was about (see the module's docstring)."""
    rule = str(alert.get("rule", ""))
    expl = alert.get("explanation")
    out: list[str] = []
    if rule == "anomaly" and isinstance(expl, Mapping):
        for c in expl.get("contributions") or ():  # a risk alert
            if isinstance(c, Mapping):
                what = [str(w) for w in c.get("what") or ()]
                rules = c.get("kind") == "rule"
                out.extend(f"rule:{w}" if rules else w for w in what)
        for d in expl.get("drivers") or ():  # a per-window alert
            if isinstance(d, Mapping) and d.get("feature"):
                out.append(str(d["feature"]))
    elif rule:
        out.append(f"rule:{rule}")
    return tuple(dict.fromkeys(out))


def parse_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


__all__: Sequence[str] = ("DEFAULT_DAMP_DAYS", "MAX_NOTE", "VERDICTS", "Label", "Labels",
                          "behaviours_of")
