"""subject_restricted: processing a subject who asked for erasure, suspension or restriction.

Anything but ``delete`` of such a subject from the request's ``effective`` time plus
``thresholds.restriction_grace_hours`` on. A ``restricted`` or ``suspension_requested`` record
with ``categories`` and/or ``purposes`` (1.1) covers only processing touching one of those
categories or for one of those purposes (either suffices).
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import KNOWN_SUBJECT, PERSONAL


class SubjectRestricted(RuleBase):
    id: ClassVar[str] = "subject_restricted"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = "use of personal information stops when the person asks"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | KNOWN_SUBJECT

    def check(self, ctx: Context) -> list[Finding] | None:
        if ctx.action == "delete" or not ctx.ev.data.subject_ids:
            return None
        grace = ctx.policy.thresholds.restriction_grace_hours * 3600.0
        hit: list[str] = []
        kinds: set[str] = set()
        purpose, cats = ctx.purpose, ctx.ev.data.categories
        for sid, state in ctx.subject_states():
            since = state.restricted_since(purpose, cats)
            if since is not None and ctx.t >= since + grace:
                hit.append(sid)
                kinds.add(state.restriction(purpose, cats) or "restricted")
        if not hit:
            return None
        kind = ", ".join(sorted(k.replace("_", " ") for k in kinds))
        return [Finding(self.id, f"Account {ctx.user_id} {ctx.action} of {ctx.resource} "
                        f"processed {len(hit)} subject(s) under {kind}", (ctx.event_id,),
                        tuple(hit), len(hit))]
