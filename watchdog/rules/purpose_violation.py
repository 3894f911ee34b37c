"""purpose_violation: personal data used without a stated purpose, or outside it.

Fires when ``data.purpose`` is missing, or when a touched category that the actor's roles do
allow is not allowed for that purpose by any of those roles. Categories no role allows are
``category_not_permitted``'s, so one event raises both only for different categories. An
access naming no categories is judged against every purpose of the actor's roles.
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, Severity


class PurposeViolation:
    id: ClassVar[str] = "purpose_violation"
    severity: ClassVar[Severity] = "medium"
    commitment: ClassVar[str] = "personal information is used only within the stated purpose"
    actions: ClassVar[frozenset[str] | None] = None
    personal_only: ClassVar[bool] = True

    def check(self, ctx: Context) -> list[Finding] | None:
        d = ctx.ev.data
        purpose = ctx.purpose
        cats = d.categories
        roles = ctx.roles
        if cats:
            permitted = [c for c in cats if any(c in r.categories for r in roles)]
            if not permitted:
                return None  # all category_not_permitted's
            if purpose is None:
                bad = sorted(set(permitted))
            else:
                bad = sorted({c for c in permitted if not any(
                    c in r.categories and purpose in r.purposes for r in roles)})
        else:
            if purpose is not None and any(purpose in r.purposes for r in roles):
                return None
            bad = []
            if purpose is not None and not roles:
                return None  # nothing to judge against: no role, no category
        if cats and not bad:
            return None
        if purpose is None:
            what = "without a stated purpose"
        else:
            what = f"for purpose {purpose}, which its roles do not allow" + (
                f" for {', '.join(bad)}" if bad else "")
        return [Finding(self.id, f"Account {ctx.user_id} {ctx.action} of {ctx.resource} "
                        f"{what}", (ctx.event_id,), d.subject_ids, d.subjects,
                        labels={"purpose": purpose or "(none)"})]
