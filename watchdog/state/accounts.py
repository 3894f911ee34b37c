"""The identity provider's account state on event time (contract 1.1, ``accounts`` topic).

The directory (HR) says what should be; account records say what is: whether an account can
log in, the roles it holds, when its password was last changed. The latest record effective at
or before an instant is the account's state then; as with the directory, records are kept per
account sorted by ``effective`` and a lookup bisects, so the order of reading does not matter.
"""

from __future__ import annotations

from bisect import bisect_right

from watchdog.events import AccountRecord, epoch


class Accounts:
    __slots__ = ("_accounts",)

    def __init__(self) -> None:
        # account -> (effective times, records), index for index
        self._accounts: dict[str, tuple[list[float], list[AccountRecord]]] = {}

    def apply(self, rec: AccountRecord) -> None:
        t = epoch(rec.effective)
        times, recs = self._accounts.setdefault(rec.user_id, ([], []))
        i = bisect_right(times, t)  # same instant: the later-read record wins
        times.insert(i, t)
        recs.insert(i, rec)

    def at(self, user_id: str, t: float) -> AccountRecord | None:
        """The account's latest record effective at or before ``t``, or None."""
        entry = self._accounts.get(user_id)
        if entry is None:
            return None
        i = bisect_right(entry[0], t)
        return entry[1][i - 1] if i else None

    def __contains__(self, user_id: str) -> bool:
        return user_id in self._accounts

    def __len__(self) -> int:
        return len(self._accounts)


__all__ = ["Accounts"]
