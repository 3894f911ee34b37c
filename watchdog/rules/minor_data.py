"""minor_data: a minor's data processed for a purpose not allowed for minors."""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import KNOWN_SUBJECT, PERSONAL


class MinorData(RuleBase):
    id: ClassVar[str] = "minor_data"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = "children's data is used only for the purposes allowed for it"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | KNOWN_SUBJECT

    def check(self, ctx: Context) -> list[Finding] | None:
        purpose = ctx.purpose
        if purpose in ctx.policy.minor_allowed_purposes:
            return None
        hit = [sid for sid, st in ctx.subject_states() if st.minor]
        if not hit:
            return None
        return [Finding(self.id, f"Account {ctx.user_id} {ctx.action} of {ctx.resource} "
                        f"processed {len(hit)} minor(s) for purpose {purpose or '(none)'}",
                        (ctx.event_id,), tuple(hit), len(hit),
                        labels={"purpose": purpose or "(none)"})]
