"""password_expired: a successful login with a password older than the policy allows.

Judged on the account's latest identity-provider record at the login's time: its
``password_changed_at`` more than ``thresholds.password_max_age_days`` (an exact duration,
N x 86,400 s) before the login. A record without ``password_changed_at`` is not judged (nothing
is carried over from earlier records). At most one alert per account and
``password_changed_at`` value: the first such login, in event-time order.
"""

from __future__ import annotations

from typing import Any, ClassVar

from msgspec import UNSET

from watchdog.alerts.model import rfc3339
from watchdog.engine.context import Context
from watchdog.events import epoch
from watchdog.rules.base import Finding, RuleBase, Severity

DAY = 86400.0


class PasswordExpired(RuleBase):
    id: ClassVar[str] = "password_expired"
    severity: ClassVar[Severity] = "medium"
    commitment: ClassVar[str] = "passwords are changed periodically"
    actions: ClassVar[frozenset[str] | None] = frozenset({"login"})
    # "the first such login" is a matter of event-time order
    ordered: ClassVar[bool] = True

    def __init__(self) -> None:
        # (account, password_changed_at) already alerted: bounded by accounts x changes
        self._alerted: set[tuple[str, float]] = set()

    def check(self, ctx: Context) -> list[Finding] | None:
        ev = ctx.ev
        if ev.event.outcome != "success":
            return None
        user = ev.user.id
        rec = ctx.accounts.at(user, ctx.t)
        if rec is None or rec.password_changed_at is UNSET:
            return None
        changed = epoch(rec.password_changed_at)
        days = ctx.policy.thresholds.password_max_age_days
        if ctx.t - changed <= days * DAY:
            return None
        key = (user, changed)
        if key in self._alerted:
            return None
        self._alerted.add(key)
        age = (ctx.t - changed) / DAY
        return [Finding(self.id, f"Account {user} logged in with a password last changed "
                        f"{rfc3339(changed)} ({age:.1f} days ago, limit {days:g} days)",
                        (ev.event.id,), key=rfc3339(changed))]

    def tracked(self) -> int:
        return len(self._alerted)

    def snapshot(self) -> Any:
        return self._alerted

    def restore(self, snap: Any) -> None:
        self._alerted = {(u, t) for u, t in snap}
