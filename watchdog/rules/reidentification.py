"""reidentification: anonymised and identified data of one resource family collated.

One account touches a resource with ``data.anonymized = true`` and, within
``thresholds.reidentification_window_minutes`` (either order), identified personal data of
the same family (``data.resource`` before the first ``.``). After an alert the pair is
consumed: a further collation needs a further access of the other kind. The (account, family)
pairs are kept bounded (:mod:`watchdog.rules.bounded`): a pair whose last access is older
than the window is forgotten; at most :data:`MAX_PAIRS` are kept (an account touches several
families, and a pair takes a quarter of what an account's export window does).
"""

from __future__ import annotations

from typing import Any, ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.bounded import Bounded
from watchdog.rules.needs import RESOURCE

_Seen = tuple[float, str]  # (event time, event id)
_NEVER = float("-inf")
MAX_PAIRS = 200_000


def _latest(slots: list[_Seen | None]) -> float:
    anon, ident = slots
    return max(_NEVER if anon is None else anon[0], _NEVER if ident is None else ident[0])


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
        self.state: Bounded[tuple[str, str], list[_Seen | None]] = Bounded(_latest, MAX_PAIRS)
        self._table = self.state.table  # (the same dict: most events look a pair up)
        self._window = 3600.0  # the policy's window at the last sweep

    def _sweep(self, t: float, ctx: Context) -> None:
        self._window = ctx.policy.thresholds.reidentification_window_minutes * 60.0
        self.state.sweep(t, t - self._window)

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
        t = ctx.t
        if t >= self.state.next_sweep:
            self._sweep(t, ctx)
        slots = self._table.get(key)
        if slots is None:
            self.state.make_room()
            slots = self._table[key] = [None, None]
        mine = 0 if anonymized else 1
        other = slots[1 - mine]
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
        return self.state.forget(before - self._window)

    def snapshot(self) -> Any:
        return [self._window, self.state.snapshot()]

    def restore(self, snap: Any) -> None:
        def slots(v: Any) -> list[_Seen | None]:
            return [None if s is None else (s[0], s[1]) for s in v]

        self._window, state = snap
        self.state.restore(state, slots, tuple)

    def forgetting(self) -> tuple[int, int]:
        return self.state.forgotten, self.state.dropped

    def tracked(self) -> int:
        return len({u for u, _ in self.state.table})
