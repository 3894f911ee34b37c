"""The subject register on event time.

A subject's states accumulate; a later record of the same ``type`` replaces the earlier one of
that type (the Kafka topic is compacted on ``subject_id/type``, so replay and the live daemon
see the same thing); ``cleared`` removes every earlier state. For consent, the latest of the
surviving ``consent_granted`` / ``consent_withdrawn`` that covers a purpose decides.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from msgspec import UNSET

from watchdog.events import SubjectRecord, epoch

RESTRICTING = ("erasure_requested", "suspension_requested", "restricted")


@dataclass(frozen=True, slots=True)
class SubjectState:
    # type -> (effective time, purposes or None for all)
    states: dict[str, tuple[float, tuple[str, ...] | None]]

    def restricted_since(self) -> float | None:
        """Earliest effective time of an erasure/suspension/restriction in force, or None."""
        times = [self.states[k][0] for k in RESTRICTING if k in self.states]
        return min(times) if times else None

    def restriction(self) -> str | None:
        found = [(self.states[k][0], k) for k in RESTRICTING if k in self.states]
        return min(found)[1] if found else None

    @property
    def minor(self) -> bool:
        return "minor" in self.states

    def consent(self, purpose: str | None) -> bool | None:
        """True granted, False withdrawn, None: nothing on record for ``purpose``."""
        best: tuple[float, bool] | None = None
        for kind, granted in (("consent_granted", True), ("consent_withdrawn", False)):
            entry = self.states.get(kind)
            if entry is None:
                continue
            t, purposes = entry
            if (purposes is None or purpose in purposes) and (best is None or t >= best[0]):
                best = (t, granted)
        return None if best is None else best[1]

    def opted_out_of_marketing(self) -> bool:
        return "marketing_opt_out" in self.states or self.consent("marketing") is False


_EMPTY = SubjectState({})


class SubjectRegister:
    __slots__ = ("_cache", "_known", "_records", "_times")

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = {}
        self._known = self._times.keys()  # a live view, made once: asked about every event
        self._records: dict[str, list[SubjectRecord]] = {}
        # subject -> (number of records in force, state): events mostly see the latest state
        self._cache: dict[str, tuple[int, SubjectState]] = {}

    def apply(self, rec: SubjectRecord) -> None:
        t = epoch(rec.effective)
        times = self._times.setdefault(rec.subject_id, [])
        i = bisect_right(times, t)
        times.insert(i, t)
        self._records.setdefault(rec.subject_id, []).insert(i, rec)
        self._cache.pop(rec.subject_id, None)

    def __contains__(self, subject_id: str) -> bool:
        return subject_id in self._times

    def knows_any(self, subject_ids: tuple[str, ...]) -> bool:
        """Is any of ``subject_ids`` in the register? (one C-level pass, for every event)"""
        return not self._known.isdisjoint(subject_ids)

    def at(self, subject_id: str, t: float) -> SubjectState:
        times = self._times.get(subject_id)
        if times is None:
            return _EMPTY
        n = bisect_right(times, t)
        cached = self._cache.get(subject_id)
        if cached is not None and cached[0] == n:
            return cached[1]
        states: dict[str, tuple[float, tuple[str, ...] | None]] = {}
        for rec_t, rec in zip(times[:n], self._records[subject_id][:n], strict=True):
            if rec.type == "cleared":
                states.clear()
            else:
                states[rec.type] = (rec_t, None if rec.purposes is UNSET else rec.purposes)
        state = SubjectState(states)
        self._cache[subject_id] = (n, state)
        return state

    def __len__(self) -> int:
        return len(self._times)
