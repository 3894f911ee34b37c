"""The identity provider's account records (contract 1.1 ``accounts`` feed).

The directory (HR) says what should be; the identity provider says what is. In the simulated
organisation the identity provider follows every directory change within minutes (well
inside ``revocation_minutes``) and every password is changed every 55-85 days, so clean
traffic raises neither ``account_not_revoked`` nor ``password_expired``. Scenarios override
that for the accounts they use: a change the identity provider never follows, or follows
late, and an account's own password history.

Every record is the account's full state (enabled, roles, password last changed) from its
``effective`` time on, as the contract reads it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from watchdog.simulate.clock import DAY, MINUTE, Calendar, iso
from watchdog.simulate.directory import ACTING, Directory
from watchdog.simulate.org import Account

FOLLOW = (1 * MINUTE, 45 * MINUTE)  # how long the identity provider takes to follow HR
ROTATE = (55 * DAY, 85 * DAY)  # how often passwords change
HISTORY = 2 * DAY  # the first record of a long-standing account: this long before the start


@dataclass
class IdentityProvider:
    """Scenario overrides, then :meth:`docs` renders every account's records."""

    # (user_id, directory change time) -> delay before the identity provider follows it;
    # None: it never does
    follow: dict[tuple[str, int], int | None] = field(default_factory=dict)
    # user_id -> [(record time, password changed at)]: the account's whole password history
    passwords: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def docs(self, accounts: list[Account], directory: Directory, cal: Calendar,
             rng: random.Random) -> list[dict[str, Any]]:
        rows: list[tuple[int, str, dict[str, Any]]] = []
        for acct in accounts:
            for at, doc in self._records(acct, directory, cal, rng):
                rows.append((at, acct.user_id, doc))
        rows.sort(key=lambda r: (r[0], r[1]))
        return [doc for _, _, doc in rows]

    def _records(self, acct: Account, directory: Directory, cal: Calendar,
                 rng: random.Random) -> list[tuple[int, dict[str, Any]]]:
        uid = acct.user_id
        first = max(acct.hired, cal.start - HISTORY)
        # state changes: (time, enabled, roles) as the identity provider applies them
        states: list[tuple[int, bool, tuple[str, ...]]] = []
        for ch in directory.changes(uid):
            if ch.at <= first:
                states = [(first, ch.status in ACTING, ch.roles)]
                continue
            delay = self.follow.get((uid, ch.at), rng.randint(*FOLLOW))
            if delay is not None:
                states.append((ch.at + delay - (ch.at + delay) % MINUTE, ch.status in ACTING,
                               ch.roles))
        if not states:
            return []
        passwords = self.passwords.get(uid)
        if passwords is None and not acct.service:
            changed = first - rng.randint(0, 80 * DAY) if acct.hired < first else first
            changed -= changed % MINUTE
            passwords = [(first, changed)]
            while (nxt := changed + rng.randint(*ROTATE)) < cal.end:
                changed = nxt - nxt % MINUTE
                passwords.append((changed, changed))
        times = sorted({t for t, _, _ in states} | {t for t, _ in passwords or ()
                                                    if t >= states[0][0]})
        out = []
        for t in times:
            _, enabled, roles = max((s for s in states if s[0] <= t), key=lambda s: s[0])
            doc: dict[str, Any] = {"user_id": uid, "enabled": enabled,
                                   "effective": iso(t, utc=acct.idx % 2 == 0),
                                   "roles": list(roles)}
            pw = [c for r, c in passwords or () if r <= t]
            if pw:
                doc["password_changed_at"] = iso(pw[-1], utc=True)
            out.append((t, doc))
        return out
