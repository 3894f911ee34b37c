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
from watchdog.rules.needs import PERSONAL

_NONE: frozenset[str] = frozenset()


class PurposeViolation:
    id: ClassVar[str] = "purpose_violation"
    severity: ClassVar[Severity] = "medium"
    commitment: ClassVar[str] = "personal information is used only within the stated purpose"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL

    def check(self, ctx: Context) -> list[Finding] | None:
        d = ctx.ev.data
        purpose = d.purpose or None  # ctx.purpose without the property call (every event)
        cats = d.categories
        grants = ctx.grants
        if cats:
            if purpose is not None and grants.by_purpose.get(purpose, _NONE).issuperset(cats):
                return None  # the common case: every category is allowed for this purpose
            by_category = grants.by_category
            permitted = [c for c in cats if c in by_category]
            if not permitted:
                return None  # all category_not_permitted's
            if purpose is None:
                bad = sorted(set(permitted))
            else:
                bad_set = {c for c in permitted if purpose not in by_category[c]}
                if not bad_set:
                    return None
                bad = sorted(bad_set)
        else:
            if purpose is not None and (purpose in grants.purposes or not grants.roles):
                return None  # allowed, or no role and no category: nothing to judge
            bad = []
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
