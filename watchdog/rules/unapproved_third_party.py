"""unapproved_third_party: personal data provided to a third party without a basis.

Destination kind ``third_party`` or ``cloud_storage`` whose organisation/domain is not a
processor approved for the event's purpose and every category, unless every touched subject
has granted consent for that purpose (a bare ``subject_count`` cannot show consent).
Contract 1.1: ``authority`` is judged as a third party unless the event names a
``data.legal_basis`` (then it is ``authority_disclosure``'s, never this rule's); with the
policy's ``allow_anonymized_provision``, anonymised data (``data.anonymized``) is not judged.
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import DESTINATION, PERSONAL

_KINDS = frozenset({"third_party", "cloud_storage", "authority"})


class UnapprovedThirdParty(RuleBase):
    id: ClassVar[str] = "unapproved_third_party"
    severity: ClassVar[Severity] = "critical"
    commitment: ClassVar[str] = "no provision to third parties without consent or a contract"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | DESTINATION

    def check(self, ctx: Context) -> list[Finding] | None:
        dest = ctx.ev.destination
        if not dest or dest.kind not in _KINDS:
            return None
        d = ctx.ev.data
        if dest.kind == "authority" and d.legal_basis:
            return None
        if d.anonymized and ctx.policy.allow_anonymized_provision:
            return None
        if ctx.policy.approves(dest, ctx.purpose, d.categories):
            return None
        proc = ctx.policy.processor_for(dest)
        if self._all_consented(ctx):
            return None
        who = dest.organization or dest.domain or "an unnamed recipient"
        why = "not an approved processor" if proc is None else (
            f"not approved for purpose {ctx.purpose or '(none)'} and these categories")
        return [Finding(self.id, f"Account {ctx.user_id} provided {d.subjects} subjects' data "
                        f"from {ctx.resource} to {who} ({dest.kind}), {why}, without consent",
                        (ctx.event_id,), d.subject_ids, d.subjects,
                        labels={"recipient": str(who)})]

    @staticmethod
    def _all_consented(ctx: Context) -> bool:
        d = ctx.ev.data
        ids = d.subject_ids
        if not ids or d.subjects > len(set(ids)):
            return False
        reg, t, purpose = ctx.register, ctx.t, ctx.purpose
        return all(s in reg and reg.at(s, t).consent(purpose) is True for s in ids)
