"""The subject register on event time.

A subject's states accumulate; a later record of the same ``type`` replaces the earlier one of
that type (the Kafka topic is compacted on ``subject_id/type``, so replay and the live daemon
see the same thing); ``cleared`` removes every earlier state. For consent, the latest of the
surviving ``consent_granted`` / ``consent_withdrawn`` that covers a purpose decides.

Version 1.1 scopes: ``restricted`` and ``suspension_requested`` may name ``categories`` and/or
``purposes`` (the restriction covers processing touching one of those categories, or for one
of those purposes: either suffices; neither: everything); ``erasure_requested`` may name the
``resources`` that must delete the subject's data. A later record of a type replaces the
earlier one, scope included.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from msgspec import UNSET

from watchdog.events import SubjectRecord, epoch

RESTRICTING = ("erasure_requested", "suspension_requested", "restricted")
_SCOPED = frozenset({"suspension_requested", "restricted"})  # 1.1: may carry a scope


@dataclass(frozen=True, slots=True)
class Entry:
    """One state in force: its record's effective time and scope (None: not given)."""

    t: float
    purposes: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None

    def covers(self, purpose: str | None, categories: tuple[str, ...]) -> bool:
        """Is processing for ``purpose`` touching ``categories`` inside this restriction?"""
        if self.purposes is None and self.categories is None:
            return True
        if self.purposes is not None and purpose in self.purposes:
            return True
        return self.categories is not None and any(c in self.categories for c in categories)


@dataclass(frozen=True, slots=True)
class SubjectState:
    # type -> the entry in force
    states: dict[str, Entry]

    def restricted_since(self, purpose: str | None = None,
                         categories: tuple[str, ...] | None = None) -> float | None:
        """Earliest effective time of an erasure/suspension/restriction in force, or None;
        with ``categories`` given, only restrictions whose scope covers that processing."""
        found = self._restrictions(purpose, categories)
        return min(found)[0] if found else None

    def restriction(self, purpose: str | None = None,
                    categories: tuple[str, ...] | None = None) -> str | None:
        found = self._restrictions(purpose, categories)
        return min(found)[1] if found else None

    def _restrictions(self, purpose: str | None,
                      categories: tuple[str, ...] | None) -> list[tuple[float, str]]:
        states = self.states
        return [(e.t, k) for k in RESTRICTING if (e := states.get(k)) is not None
                and (categories is None or k not in _SCOPED or e.covers(purpose, categories))]

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
            t, purposes = entry.t, entry.purposes
            if (purposes is None or purpose in purposes) and (best is None or t >= best[0]):
                best = (t, granted)
        return None if best is None else best[1]

    def opted_out_of_marketing(self) -> bool:
        return "marketing_opt_out" in self.states or self.consent("marketing") is False


_EMPTY = SubjectState({})


class SubjectRegister:
    __slots__ = ("_cache", "_known", "_records", "_times", "_written")

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = {}
        self._known = self._times.keys()  # a live view, made once: asked about every event
        self._records: dict[str, list[SubjectRecord]] = {}
        # subject -> (number of records in force, state): events mostly see the latest state
        self._cache: dict[str, tuple[int, SubjectState]] = {}
        # erasure requests applied, with ``effective`` as written (obligations cite it)
        self._written: list[tuple[SubjectRecord, str]] = []

    def records(self) -> Iterator[tuple[SubjectRecord, str]]:
        """The erasure requests applied, in that order, with ``effective`` as written."""
        return iter(list(self._written))

    def apply(self, rec: SubjectRecord, written: str = "") -> None:
        if rec.type == "erasure_requested":
            self._written.append((rec, written))
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
        states: dict[str, Entry] = {}
        for rec_t, rec in zip(times[:n], self._records[subject_id][:n], strict=True):
            if rec.type == "cleared":
                states.clear()
            else:
                states[rec.type] = Entry(
                    rec_t, None if rec.purposes is UNSET else rec.purposes,
                    None if rec.categories is UNSET else rec.categories,
                    None if rec.resources is UNSET else rec.resources)
        state = SubjectState(states)
        self._cache[subject_id] = (n, state)
        return state

    def __len__(self) -> int:
        return len(self._times)
