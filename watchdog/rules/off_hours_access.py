"""off_hours_access: personal data accessed outside business hours by a day-time role."""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import PERSONAL


class OffHoursAccess(RuleBase):
    id: ClassVar[str] = "off_hours_access"
    severity: ClassVar[Severity] = "low"
    commitment: ClassVar[str] = "personal data is handled during working hours under supervision"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL

    def check(self, ctx: Context) -> list[Finding] | None:
        if ctx.grants.after_hours:  # first: cheaper than the clock
            return None
        hours = ctx.policy.business_hours
        if hours is None or hours.contains(ctx.t):
            return None
        d = ctx.ev.data
        return [Finding(self.id, f"Account {ctx.user_id} {ctx.action} of {ctx.resource} "
                        "outside business hours", (ctx.event_id,), d.subject_ids, d.subjects)]
