"""bulk_export: too many subjects taken out at once, or by one account within an hour.

Only ``export``, ``download``, ``copy``, ``print`` and ``transfer`` count. Per event: more than
``bulk_export_subjects``. Per account: more than ``bulk_export_subjects_per_hour`` distinct
subjects in the window (t - 60 min, t]; an event with only ``subject_count`` adds that many.
One alert per crossing of the hourly threshold. A role with ``bulk_export: true`` has no
per-event limit and ten times the hourly one. Accounts are kept bounded
(:mod:`watchdog.rules.bounded`): one without an export in the window is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.bounded import Bounded
from watchdog.rules.needs import PERSONAL

WINDOW = 3600.0
MAX_EVENT_IDS = 20  # ids cited in an hourly alert (the last ones, completing event last)


@dataclass(slots=True)
class _Account:
    # (time, event id, subject ids, anonymous count) in time order
    # a list, not a deque: a deque takes 600 bytes however short, and one is kept per account
    entries: list[tuple[float, str, tuple[str, ...], int]] = field(default_factory=list)
    last_seen: dict[str, float] = field(default_factory=dict)  # subject -> latest time
    anonymous: int = 0
    above: bool = False
    latest: float = 0.0

    def add(self, t: float, eid: str, ids: tuple[str, ...], anonymous: int) -> int:
        self._expire(t - WINDOW)
        if not self.entries:  # fallen to nothing: as if new (forgetting it changes nothing)
            self.above = False
        self.entries.append((t, eid, ids, anonymous))
        last_seen = self.last_seen
        for s in ids:
            if last_seen.get(s, -1.0) < t:
                last_seen[s] = t
        self.anonymous += anonymous
        self.latest = max(self.latest, t)
        return len(last_seen) + self.anonymous

    def _expire(self, cutoff: float) -> None:
        entries, last_seen = self.entries, self.last_seen
        i = 0
        while i < len(entries) and entries[i][0] <= cutoff:
            t, _, ids, anonymous = entries[i]
            self.anonymous -= anonymous
            for s in ids:
                if last_seen.get(s) == t:
                    del last_seen[s]
            i += 1
        if i:
            del entries[:i]


def _latest(acct: _Account) -> float:
    return acct.latest


def _load(v: Any) -> _Account:
    """An account as a checkpoint wrote it (a dataclass: a map of its fields)."""
    return _Account([(t, eid, tuple(ids), anon) for t, eid, ids, anon in v["entries"]],
                    dict(v["last_seen"]), v["anonymous"], v["above"], v["latest"])


class BulkExport(RuleBase):
    id: ClassVar[str] = "bulk_export"
    severity: ClassVar[Severity] = "critical"
    commitment: ClassVar[str] = "the means of taking personal data out are restricted"
    actions: ClassVar[frozenset[str] | None] = frozenset(
        {"export", "download", "copy", "print", "transfer"})
    needs: ClassVar[int] = PERSONAL
    ordered: ClassVar[bool] = True
    windowed: ClassVar[bool] = True

    def __init__(self) -> None:
        self.state: Bounded[str, _Account] = Bounded(_latest)

    def check(self, ctx: Context) -> list[Finding] | None:
        d = ctx.ev.data
        th = ctx.policy.thresholds
        privileged = ctx.grants.bulk_export
        n = d.subjects
        ids = d.subject_ids
        anonymous = max(0, n - len(set(ids))) if d.subject_count else 0
        t = ctx.t
        state = self.state
        if t >= state.next_sweep:
            state.sweep(t, t - WINDOW)
        acct = state.table.get(ctx.user_id)
        if acct is None:
            state.make_room()
            acct = state.table[ctx.user_id] = _Account()
        hour_limit = th.bulk_export_subjects_per_hour * (10 if privileged else 1)
        total = acct.add(t, ctx.event_id, ids, anonymous)
        crossed = total > hour_limit and not acct.above
        acct.above = total > hour_limit
        single = not privileged and n > th.bulk_export_subjects
        if not (single or crossed):
            return None
        parts = []
        if single:
            parts.append(f"{n} subjects in one {ctx.action} (limit {th.bulk_export_subjects})")
        if crossed:
            parts.append(f"{total} distinct subjects within an hour (limit {hour_limit})")
        event_ids: tuple[str, ...] = (ctx.event_id,)
        if crossed:
            event_ids = tuple(e[1] for e in acct.entries[-MAX_EVENT_IDS:])
        return [Finding(self.id, f"Account {ctx.user_id} took out personal data from "
                        f"{ctx.resource}: {'; '.join(parts)}", event_ids, ids,
                        max(n, total if crossed else 0))]

    def evict(self, before: float) -> int:
        return self.state.forget(before - WINDOW)

    def snapshot(self) -> Any:
        return self.state.snapshot()

    def restore(self, snap: Any) -> None:
        self.state.restore(snap, _load)

    def forgetting(self) -> tuple[int, int]:
        return self.state.forgotten, self.state.dropped

    def tracked(self) -> int:
        return len(self.state)
