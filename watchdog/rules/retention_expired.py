"""retention_expired: a record kept and processed beyond its category's retention period."""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.events import epoch
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import COLLECTED_AT, PERSONAL

_DAY = 86400.0


class RetentionExpired(RuleBase):
    id: ClassVar[str] = "retention_expired"
    severity: ClassVar[Severity] = "medium"
    commitment: ClassVar[str] = "personal data is deleted when its retention period ends"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | COLLECTED_AT

    def check(self, ctx: Context) -> list[Finding] | None:
        d = ctx.ev.data
        if not d.collected_at or ctx.action == "delete":
            return None
        retention = ctx.policy.retention_days
        age = (ctx.t - epoch(d.collected_at)) / _DAY
        for c in d.categories:  # a loop, not any(<generator>): this is the common case
            days = retention.get(c)
            if days is not None and age > days:
                break
        else:
            return None  # every category within its retention
        expired = sorted(c for c in set(d.categories) if c in retention and age > retention[c])
        limits = ", ".join(f"{c} {retention[c]} days" for c in expired)
        return [Finding(self.id, f"Account {ctx.user_id} {ctx.action} of {ctx.resource} "
                        f"processed records {int(age)} days old, past retention ({limits})",
                        (ctx.event_id,), d.subject_ids, d.subjects,
                        labels={"categories": ",".join(expired)})]
