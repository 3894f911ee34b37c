"""authority_disclosure: personal data provided to a public body on a legal basis.

``destination.kind = authority`` with a non-empty ``data.legal_basis``: lawful (and never
``unapproved_third_party``), but the policy may promise to tell the subject, so it is recorded.
Without a legal basis the destination is judged as a third party instead.
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import DESTINATION, PERSONAL


class AuthorityDisclosure(RuleBase):
    id: ClassVar[str] = "authority_disclosure"
    severity: ClassVar[Severity] = "low"
    commitment: ClassVar[str] = "disclosures to public authorities rest on a law and are recorded"
    needs: ClassVar[int] = PERSONAL | DESTINATION

    def check(self, ctx: Context) -> list[Finding] | None:
        dest = ctx.ev.destination
        d = ctx.ev.data
        if not dest or dest.kind != "authority" or not d.legal_basis:
            return None
        who = dest.organization or dest.domain or "a public authority"
        return [Finding(self.id, f"Account {ctx.user_id} provided {d.subjects} subjects' data "
                        f"from {ctx.resource} to {who} on the legal basis {d.legal_basis!r}",
                        (ctx.event_id,), d.subject_ids, d.subjects,
                        labels={"recipient": str(who)})]
