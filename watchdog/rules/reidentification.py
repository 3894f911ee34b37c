"""reidentification: anonymised and identified data of one resource family collated.

One account touches a resource with ``data.anonymized = true`` and, within
``thresholds.reidentification_window_minutes`` (either order), identified personal data of
the same family (``data.resource`` before the first ``.``). After an alert the pair is
consumed: a further collation needs a further access of the other kind.
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import RESOURCE

_Seen = tuple[float, str]  # (event time, event id)


class Reidentification(RuleBase):
    id: ClassVar[str] = "reidentification"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = ("anonymously processed information is never collated with "
                                 "other information to identify a person")
    actions: ClassVar[frozenset[str] | None] = None
    # an anonymised extract need not name categories or subjects; the identified side must
    needs: ClassVar[int] = RESOURCE
    ordered: ClassVar[bool] = True
    windowed: ClassVar[bool] = True

    def __init__(self) -> None:
        # (account, family) -> [last anonymised access, last identified access]
        self._seen: dict[tuple[str, str], list[_Seen | None]] = {}

    def check(self, ctx: Context) -> list[Finding] | None:
        ev = ctx.ev
        d = ev.data
        resource = d.resource
        anonymized = d.anonymized
        if not resource or not (ctx.personal or anonymized):
            return None
        family = resource.partition(".")[0]
        user_id = ev.user.id
        key = (user_id, family)
        slots = self._seen.get(key)
        if slots is None:
            slots = self._seen[key] = [None, None]
        mine = 0 if anonymized else 1
        other = slots[1 - mine]
        t = ctx.t
        if other is not None and abs(t - other[0]) <= (
                ctx.policy.thresholds.reidentification_window_minutes * 60.0):
            slots[0] = slots[1] = None
            kinds = ("identified", "anonymised") if mine == 0 else ("anonymised", "identified")
            minutes = abs(t - other[0]) / 60
            return [Finding(self.id, f"Account {user_id} accessed {kinds[0]} and then "
                            f"{kinds[1]} data of family {family} within {minutes:.0f} minutes "
                            f"(last: {resource})", (other[1], ev.event.id),
                            d.subject_ids, d.subjects, labels={"family": family})]
        last = slots[mine]
        if last is None or t >= last[0]:
            slots[mine] = (t, ev.event.id)
        return None

    def evict(self, before: float) -> int:
        horizon = before - 86400.0
        # no generator per entry: this scans every (account, family) of the organisation
        idle = [k for k, (anon, ident) in self._seen.items()
                if (anon is None or anon[0] <= horizon) and (ident is None or ident[0] <= horizon)]
        for k in idle:
            del self._seen[k]
        return len(idle)

    def tracked(self) -> int:
        return len({u for u, _ in self._seen})
