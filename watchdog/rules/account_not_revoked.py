"""account_not_revoked: the directory says an account must stop, the identity provider still
lets it in (an obligation, contract 1.1).

A directory record making an account ``departed``, ``suspended`` or ``transferred`` at T opens
an obligation due at T + ``thresholds.revocation_minutes``. At the deadline, against the latest
directory record and the latest account record effective then: not judged when the identity
provider reports no record of the account or the directory says ``active`` again (a departure
reverted in time); ``departed`` / ``suspended`` fires when the account is still enabled;
``transferred`` fires when it is enabled and holds a role the directory's roles lack. The
alert's ``ts`` is the deadline, its ``event_ids`` ``directory/<user_id>/<effective>``.

Memory: one entry per pending revocation, dropped once judged.
"""

from __future__ import annotations

from typing import Any, ClassVar

from msgspec import UNSET

from watchdog.alerts.model import rfc3339
from watchdog.engine.facts import Facts
from watchdog.events import AccountRecord, DirectoryRecord, SubjectRecord, epoch
from watchdog.rules.base import Finding, Obligation, Severity


class AccountNotRevoked(Obligation):
    id: ClassVar[str] = "account_not_revoked"
    severity: ClassVar[Severity] = "critical"
    commitment: ClassVar[str] = ("accounts of staff who left or transferred are invalidated "
                                 "without delay")
    actions: ClassVar[frozenset[str] | None] = frozenset()  # judges no event: deadlines only

    def __init__(self) -> None:
        self._pending: dict[str, tuple[str, str]] = {}  # key -> (account, effective as written)

    def start(self, rec: DirectoryRecord | SubjectRecord | AccountRecord, written: str,
              facts: Facts) -> list[tuple[float, str]]:
        if not isinstance(rec, DirectoryRecord) or rec.status == "active":
            return []
        key = f"{rec.user_id}\x1f{written}"
        if key in self._pending:
            return []
        self._pending[key] = (rec.user_id, written)
        minutes = facts.policy.thresholds.revocation_minutes
        return [(epoch(rec.effective) + minutes * 60.0, key)]

    def judge(self, key: str, deadline: float, facts: Facts) -> list[Finding]:
        entry = self._pending.pop(key, None)
        if entry is None:
            return []
        user, written = entry
        acct = facts.accounts.at(user, deadline)
        hr = facts.directory.at(user, deadline)
        if acct is None or hr is None or hr.status == "active" or not acct.enabled:
            return []
        what = f"still enabled in the identity provider at {rfc3339(deadline)}"
        if hr.status == "transferred":
            kept = sorted(set(acct.roles or ()) - set(hr.roles if hr.roles is not UNSET else ()))
            if not kept:
                return []
            what += f" with roles its new position lacks: {', '.join(kept)}"
        return [Finding(self.id, f"Account {user} was made {hr.status} by the directory "
                        f"({written}) and is {what}", (f"directory/{user}/{written}",),
                        user_id=user, labels={"status": hr.status})]

    def open(self) -> int:
        return len(self._pending)

    def snapshot(self) -> Any:
        return self._pending

    def restore(self, snap: Any) -> None:
        self._pending = {k: (u, w) for k, (u, w) in snap.items()}

    def tracked(self) -> int:
        return len(self._pending)
