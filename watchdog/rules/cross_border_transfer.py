"""cross_border_transfer: personal data to a country outside the adequate ones, unprotected.

Applies to any destination with a ``country``. Lawful when the matching processor has
``safeguards`` (e.g. SCC). Without an ``adequate_countries`` list the policy states no
transfer regime and the rule stays silent. With the policy's ``allow_anonymized_provision``
(1.1), anonymised data is not judged.
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import DESTINATION, PERSONAL


class CrossBorderTransfer(RuleBase):
    id: ClassVar[str] = "cross_border_transfer"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = ("transfers to third countries only with adequate protection "
                                 "or safeguards such as SCC")
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | DESTINATION

    def check(self, ctx: Context) -> list[Finding] | None:
        dest = ctx.ev.destination
        policy = ctx.policy
        if not dest or not dest.country or not policy.adequate_countries:
            return None
        if dest.country in policy.adequate_countries:
            return None
        if any(p.safeguards for p in policy.processors_for(dest)):
            return None
        d = ctx.ev.data
        if d.anonymized and policy.allow_anonymized_provision:
            return None
        who = dest.organization or dest.domain or dest.kind or "a recipient"
        return [Finding(self.id, f"Account {ctx.user_id} sent {d.subjects} subjects' data from "
                        f"{ctx.resource} to {who} in {dest.country}, outside the adequate "
                        "countries and without safeguards", (ctx.event_id,), d.subject_ids,
                        d.subjects, labels={"country": dest.country})]
