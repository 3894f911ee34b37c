"""external_email: personal data e-mailed outside the organisation and its approved processors.

Action ``email`` or destination kind ``email``; the recipient domain matches an internal
domain exactly or as a subdomain; a processor approved for this purpose and these categories
is exempt. An e-mail whose log names no domain cannot be judged and raises nothing. With the
policy's ``allow_anonymized_provision`` (1.1), anonymised data is not judged.
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import DESTINATION, PERSONAL


class ExternalEmail(RuleBase):
    id: ClassVar[str] = "external_email"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = "personal data is not sent by e-mail outside the organisation"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | DESTINATION

    def check(self, ctx: Context) -> list[Finding] | None:
        dest = ctx.ev.destination
        if ctx.action != "email" and not (dest and dest.kind == "email"):
            return None
        if not dest or not dest.domain:
            return None
        policy = ctx.policy
        if policy.is_internal_domain(dest.domain):
            return None
        d = ctx.ev.data
        if d.anonymized and policy.allow_anonymized_provision:
            return None
        if policy.approves(dest, ctx.purpose, d.categories):
            return None
        return [Finding(self.id, f"Account {ctx.user_id} e-mailed {d.subjects} subjects' data "
                        f"from {ctx.resource} to external domain {dest.domain}",
                        (ctx.event_id,), d.subject_ids, d.subjects,
                        labels={"domain": dest.domain})]
