"""marketing_opt_out: marketing use of a subject who opted out or withdrew consent."""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import KNOWN_SUBJECT, PERSONAL


class MarketingOptOut(RuleBase):
    id: ClassVar[str] = "marketing_opt_out"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = "marketing stops for people who opt out"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | KNOWN_SUBJECT
    # contract 1.1: an event that raises this does not also raise consent_missing
    supersedes: ClassVar[tuple[str, ...]] = ("consent_missing",)

    def check(self, ctx: Context) -> list[Finding] | None:
        if ctx.purpose != "marketing":
            return None
        hit = [sid for sid, st in ctx.subject_states() if st.opted_out_of_marketing()]
        if not hit:
            return None
        return [Finding(self.id, f"Account {ctx.user_id} {ctx.action} of {ctx.resource} for "
                        f"marketing touched {len(hit)} subject(s) who opted out or withdrew "
                        "consent", (ctx.event_id,), tuple(hit), len(hit))]
