"""external_network: personal data accessed from an address outside the internal networks."""

from __future__ import annotations

from typing import ClassVar

from watchdog.engine.context import Context
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import PERSONAL, SOURCE_IP


class ExternalNetwork(RuleBase):
    id: ClassVar[str] = "external_network"
    severity: ClassVar[Severity] = "medium"
    commitment: ClassVar[str] = "personal data is reached only from the company network"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | SOURCE_IP

    def check(self, ctx: Context) -> list[Finding] | None:
        src = ctx.ev.source
        policy = ctx.policy
        if not src or not src.ip or not policy.internal_networks:
            return None
        if policy.is_internal_ip(src.ip) is not False:
            return None  # internal, or not an address at all: nothing to judge
        d = ctx.ev.data
        return [Finding(self.id, f"Account {ctx.user_id} {ctx.action} of {ctx.resource} from "
                        f"external address {src.ip}", (ctx.event_id,), d.subject_ids,
                        d.subjects)]
