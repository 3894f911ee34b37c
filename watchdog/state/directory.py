"""The directory on event time: which state an account is in at a given instant.

Records are kept per account, sorted by ``effective``; a lookup bisects, so a record that
arrives after the events it governs (a late HR feed) still answers correctly for any event
processed afterwards, and a 10:00 departure never affects a 09:59 event. A record applies
from its ``effective`` instant on, including to an event with the same timestamp.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator

from watchdog.events import DirectoryRecord, epoch


class Directory:
    __slots__ = ("_accounts", "_written", "version")

    def __init__(self) -> None:
        # account -> (effective times, records), index for index: one lookup per event
        self._accounts: dict[str, tuple[list[float], list[DirectoryRecord]]] = {}
        # every record applied, with ``effective`` as written (obligations cite it)
        self._written: list[tuple[DirectoryRecord, str]] = []
        self.version = 0  # records applied or dropped: what :meth:`span` said may be stale

    def apply(self, rec: DirectoryRecord, written: str = "") -> None:
        t = epoch(rec.effective)
        times, recs = self._accounts.setdefault(rec.user_id, ([], []))
        i = bisect_right(times, t)  # same instant: the later-read record wins
        times.insert(i, t)
        recs.insert(i, rec)
        self.version += 1
        if rec.status != "active":  # only these start obligations
            self._written.append((rec, written))

    def records(self) -> Iterator[tuple[DirectoryRecord, str]]:
        """The records that are not ``active``, in the order applied, with ``effective`` as
        written (a second engine over the same state opens the same obligations)."""
        return iter(list(self._written))

    def at(self, user_id: str, t: float) -> DirectoryRecord | None:
        """The account's record in force at ``t``, or None if none is effective yet."""
        entry = self._accounts.get(user_id)
        if entry is None:
            return None
        i = bisect_right(entry[0], t)
        return entry[1][i - 1] if i else None

    def span(self, user_id: str, t: float) -> tuple[DirectoryRecord | None, float, float]:
        """:meth:`at`, with the event times over which that answer holds, [from, until),
        as long as :attr:`version` does not change."""
        entry = self._accounts.get(user_id)
        if entry is None:
            return None, -math.inf, math.inf
        times = entry[0]
        i = bisect_right(times, t)
        return (entry[1][i - 1] if i else None, times[i - 1] if i else -math.inf,
                times[i] if i < len(times) else math.inf)

    def compact(self, before: float) -> int:
        """Drop records superseded before ``before``; returns how many were dropped."""
        dropped = 0
        for times, recs in self._accounts.values():
            i = bisect_right(times, before) - 1
            if i > 0:
                del times[:i]
                del recs[:i]
                dropped += i
        if dropped:
            self.version += 1
        return dropped

    def __len__(self) -> int:
        return len(self._accounts)


__all__ = ["Directory"]
