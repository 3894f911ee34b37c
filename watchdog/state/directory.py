"""The directory on event time: which state an account is in at a given instant.

Records are kept per account, sorted by ``effective``; a lookup bisects, so a record that
arrives after the events it governs (a late HR feed) still answers correctly for any event
processed afterwards, and a 10:00 departure never affects a 09:59 event. A record applies
from its ``effective`` instant on, including to an event with the same timestamp.
"""

from __future__ import annotations

from bisect import bisect_right

from watchdog.events import DirectoryRecord, epoch


class Directory:
    __slots__ = ("_records", "_times")

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = {}
        self._records: dict[str, list[DirectoryRecord]] = {}

    def apply(self, rec: DirectoryRecord) -> None:
        t = epoch(rec.effective)
        times = self._times.setdefault(rec.user_id, [])
        recs = self._records.setdefault(rec.user_id, [])
        i = bisect_right(times, t)  # same instant: the later-read record wins
        times.insert(i, t)
        recs.insert(i, rec)

    def at(self, user_id: str, t: float) -> DirectoryRecord | None:
        """The account's record in force at ``t``, or None if none is effective yet."""
        times = self._times.get(user_id)
        if times is None:
            return None
        i = bisect_right(times, t)
        return self._records[user_id][i - 1] if i else None

    def compact(self, before: float) -> int:
        """Drop records superseded before ``before``; returns how many were dropped."""
        dropped = 0
        for uid, times in self._times.items():
            i = bisect_right(times, before) - 1
            if i > 0:
                del times[:i]
                del self._records[uid][:i]
                dropped += i
        return dropped

    def __len__(self) -> int:
        return len(self._times)


__all__ = ["Directory"]
