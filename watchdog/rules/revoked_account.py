"""revoked_account / unknown_account: accounts that should not be acting at all.

Departed and suspended accounts fire on every event, logins included. A transferred account
fires only for personal-data access touching a category its new roles do not allow. An account
the directory has no record of (at the event's time) fires ``unknown_account`` when it touches
personal data.
"""

from __future__ import annotations

from typing import ClassVar

from watchdog.alerts.model import rfc3339
from watchdog.engine.context import Context
from watchdog.events import epoch
from watchdog.rules.base import Finding, RuleBase, Severity
from watchdog.rules.needs import INACTIVE_ACCOUNT, PERSONAL, UNKNOWN_ACCOUNT

_VERB = {"departed": "Departed", "suspended": "Suspended", "transferred": "Transferred"}
# the rules that judge an account's roles
ROLE_BASED = ("category_not_permitted", "purpose_violation", "off_hours_access")
_SINCE = {"departed": "left", "suspended": "suspended", "transferred": "transferred"}


class RevokedAccount(RuleBase):
    id: ClassVar[str] = "revoked_account"
    severity: ClassVar[Severity] = "critical"
    commitment: ClassVar[str] = "accounts of staff who left or transferred are invalidated at once"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = INACTIVE_ACCOUNT
    # an account that should not act at all gets one alert saying so, not also the alerts
    # that judge its (meaningless) roles on the same event
    supersedes: ClassVar[tuple[str, ...]] = ROLE_BASED

    def check(self, ctx: Context) -> list[Finding] | None:
        actor = ctx.actor
        if actor is None or actor.status == "active":
            return None
        ev = ctx.ev
        if actor.status == "transferred":
            if not ctx.personal:
                return None
            outside = sorted(set(ev.data.categories) - ctx.allowed_categories())
            if not outside:
                return None
            since = rfc3339(epoch(actor.effective))
            what = (f"Transferred account {ctx.user_id} (since {since}) {ctx.action} of "
                    f"{ctx.resource} touching {', '.join(outside)}, outside its new roles")
        else:
            since = rfc3339(epoch(actor.effective))
            verb = ("attempted a login" if ctx.action == "login"
                    else f"{ctx.action} of {ctx.resource}")
            src = f" from {ev.source.ip}" if ev.source and ev.source.ip else ""
            what = (f"{_VERB[actor.status]} account {ctx.user_id} ({_SINCE[actor.status]} "
                    f"{since}) {verb}{src}")
        return [Finding(self.id, what, (ctx.event_id,), ev.data.subject_ids,
                        ev.data.subjects, labels={"status": actor.status})]


class UnknownAccount(RuleBase):
    id: ClassVar[str] = "unknown_account"
    severity: ClassVar[Severity] = "high"
    commitment: ClassVar[str] = "only registered, authorised staff access personal data"
    actions: ClassVar[frozenset[str] | None] = None
    needs: ClassVar[int] = PERSONAL | UNKNOWN_ACCOUNT
    supersedes: ClassVar[tuple[str, ...]] = ROLE_BASED

    def check(self, ctx: Context) -> list[Finding] | None:
        if ctx.actor is not None:
            return None
        d = ctx.ev.data
        return [Finding(self.id, f"Account {ctx.user_id}, unknown to the directory, "
                        f"{ctx.action} of {ctx.resource}", (ctx.event_id,), d.subject_ids,
                        d.subjects)]
