"""purpose_violation: personal data used without a stated purpose, or outside it.

Fires when ``data.purpose`` is missing, or when a touched category that the actor's roles do
allow is not allowed for that purpose by any of those roles. Categories no role allows are
``category_not_permitted``'s, so one event raises both only for different categories. An
access naming no categories is judged against every purpose of the actor's roles.

Contract 1.1: the policy's ``category_purposes`` (category -> the only purposes it may be
processed for) apply whatever the roles allow, so one category can raise both this and
``category_not_permitted``; still at most one ``purpose_violation`` per event.
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import PERSONAL

_NONE: frozenset[str] = frozenset()


class PurposeViolation(RuleBase):
    id: ClassVar[str] = "purpose_violation"
    severity: ClassVar[Severity] = "medium"
    commitment: ClassVar[str] = "personal information is used only within the stated purpose"
    needs: ClassVar[int] = PERSONAL

    def check(self, ctx: Context) -> list[Finding] | None:
        d = ctx.ev.data
        purpose = d.purpose or None  # ctx.purpose without the property call (every event)
        cats = d.categories
        bad = self._by_roles(ctx, purpose, cats)
        who = "its roles do"
        limits = ctx.policy.category_purposes
        if limits and cats:
            outside = {c for c in cats if c in limits and purpose not in limits[c]}
            if outside:
                who = "the policy does" if not bad else "its roles and the policy do"
                bad = sorted(outside.union(bad or ()))
        if bad is None:
            return None
        if purpose is None:
            what = "without a stated purpose"
        else:
            what = f"for purpose {purpose}, which {who} not allow" + (
                f" for {', '.join(bad)}" if bad else "")
        return [Finding(self.id, f"Account {ctx.user_id} {ctx.action} of {ctx.resource} "
                        f"{what}", (ctx.event_id,), d.subject_ids, d.subjects,
                        labels={"purpose": purpose or "(none)"})]

    @staticmethod
    def _by_roles(ctx: Context, purpose: str | None,
                  cats: tuple[str, ...]) -> list[str] | None:
        """What the roles do not allow: the categories (an empty list: no category named, or
        no purpose), or None when nothing is wrong."""
        grants = ctx.grants
        if cats:
            if purpose is not None and grants.by_purpose.get(purpose, _NONE).issuperset(cats):
                return None  # the common case: every category is allowed for this purpose
            by_category = grants.by_category
            permitted = [c for c in cats if c in by_category]
            if not permitted:
                # all category_not_permitted's; a missing purpose is still wrong
                return None
            if purpose is None:
                return sorted(set(permitted))
            bad = sorted({c for c in permitted if purpose not in by_category[c]})
            return bad or None
        if purpose is not None and (purpose in grants.purposes or not grants.roles):
            return None  # allowed, or no role and no category: nothing to judge
        return []
