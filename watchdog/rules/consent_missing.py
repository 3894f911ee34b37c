"""consent_missing: processing for a consent-based purpose without the subject's consent.

For a purpose in the policy's ``consent_purposes``: fires for the named subjects whose latest
consent record covering that purpose is ``consent_withdrawn``, or, with ``consent_opt_in:
true``, who have no ``consent_granted`` covering it. Only subjects named in
``data.subject_ids`` can be judged (a bare ``subject_count`` shows no one's consent). Not raised
for an event that raises ``marketing_opt_out`` (which supersedes it).
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.policy.model import Policy
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import PERSONAL


class ConsentMissing(RuleBase):
    id: ClassVar[str] = "consent_missing"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = ("personal data is processed for consent-based purposes only "
                                 "with the person's consent")
    needs: ClassVar[int] = PERSONAL

    def enabled(self, policy: Policy) -> bool:
        return bool(policy.consent_purposes)

    def check(self, ctx: Context) -> list[Finding] | None:
        d = ctx.ev.data
        purpose = d.purpose
        policy = ctx.policy
        if not purpose or purpose not in policy.consent_purposes or not d.subject_ids:
            return None
        reg, t = ctx.register, ctx.t
        opt_in = policy.consent_opt_in
        hit: list[str] = []
        withdrawn = 0
        for s in dict.fromkeys(d.subject_ids):
            consent = reg.at(s, t).consent(purpose) if s in reg else None
            if consent is False:
                hit.append(s)
                withdrawn += 1
            elif consent is None and opt_in:
                hit.append(s)
        if not hit:
            return None
        why = []
        if withdrawn:
            why.append(f"{withdrawn} withdrew consent")
        if len(hit) > withdrawn:
            why.append(f"{len(hit) - withdrawn} never consented")
        return [Finding(self.id, f"Account {ctx.user_id} {ctx.action} of {ctx.resource} for "
                        f"{purpose}, a purpose that needs consent: {' and '.join(why)}",
                        (ctx.event_id,), tuple(hit), len(hit), labels={"purpose": purpose})]
