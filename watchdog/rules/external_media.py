"""external_media: personal data written to removable media, forbidden outright."""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import DESTINATION, PERSONAL


class ExternalMedia(RuleBase):
    id: ClassVar[str] = "external_media"
    severity: ClassVar[Severity] = "critical"
    commitment: ClassVar[str] = "no recording of personal data on external media"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | DESTINATION

    def check(self, ctx: Context) -> list[Finding] | None:
        dest = ctx.ev.destination
        if not dest or dest.kind != "external_media":
            return None
        d = ctx.ev.data
        return [Finding(self.id, f"Account {ctx.user_id} wrote {d.subjects} subjects' data "
                        f"from {ctx.resource} to external media ({ctx.action})",
                        (ctx.event_id,), d.subject_ids, d.subjects)]
