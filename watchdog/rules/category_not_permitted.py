"""category_not_permitted: a category of personal data none of the actor's roles allows."""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import PERSONAL


class CategoryNotPermitted(RuleBase):
    id: ClassVar[str] = "category_not_permitted"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = "staff access only the personal data their duties require"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL

    def check(self, ctx: Context) -> list[Finding] | None:
        cats = ctx.ev.data.categories
        if not cats:
            return None
        allowed = ctx.grants.categories
        if allowed.issuperset(cats):  # the common case, without building a set
            return None
        outside = sorted({c for c in cats if c not in allowed})
        d = ctx.ev.data
        roles = ctx.grants.names
        return [Finding(self.id, f"Account {ctx.user_id} ({roles}) {ctx.action} of "
                        f"{ctx.resource} touched {', '.join(outside)}, which its roles do not "
                        "allow", (ctx.event_id,), d.subject_ids, d.subjects,
                        labels={"categories": ",".join(outside)})]
