"""Data subjects (customers) and the subject register: requests, consents, opt-outs, minors.

Clean traffic touches only subjects the register has never heard of (the *normal pool*);
lawful work on registered subjects (a delete after an erasure request, support for a
minor, a consented share) is planned explicitly by the benign scenarios, and unlawful work
by the violation scenarios.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from watchdog.simulate.clock import DAY, HOUR, MINUTE, Calendar, iso
from watchdog.simulate.ids import subject_id


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    subject: int
    type: str
    at: int
    purposes: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None  # erasure_requested: who must delete (1.1)


class Register:
    def __init__(self, n: int) -> None:
        self.n = n
        self.records: list[SubjectRecord] = []
        self._special: set[int] = set()  # in the register: never in clean traffic
        self._claimed: set[int] = set()  # named by a planned event: never registered later

    def add(self, subject: int, type_: str, at: int,
            purposes: tuple[str, ...] | None = None,
            resources: tuple[str, ...] | None = None) -> None:
        self._special.add(subject)
        self.records.append(SubjectRecord(subject, type_, at, purposes, resources))

    def _free(self, rng: random.Random) -> int:
        for _ in range(10_000):
            i = rng.randrange(self.n)
            if i not in self._special and i not in self._claimed:
                return i
        raise RuntimeError("no unregistered subject left; raise SimConfig.subjects")

    def take(self, rng: random.Random) -> int:
        """A subject not yet registered nor named elsewhere; the caller registers it."""
        i = self._free(rng)
        self._special.add(i)
        return i

    def claim(self, rng: random.Random, k: int) -> list[str]:
        """``k`` distinct normal subjects for a planned event; they stay normal forever."""
        out: list[int] = []
        while len(out) < k:
            i = self._free(rng)
            self._claimed.add(i)
            out.append(i)
        return [subject_id(i) for i in out]

    def normal_pool(self) -> list[str]:
        return [subject_id(i) for i in range(self.n) if i not in self._special]

    def docs(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.records:
            doc: dict[str, Any] = {"subject_id": subject_id(r.subject), "type": r.type,
                                   "effective": iso(r.at, utc=r.subject % 3 == 0)}
            if r.purposes is not None:
                doc["purposes"] = list(r.purposes)
            if r.resources is not None:
                doc["resources"] = list(r.resources)
            rows.append((r.at, r.subject, doc))
        rows.sort(key=lambda x: (x[0], x[1]))
        return [x[2] for x in rows]


def plan_register(reg: Register, cal: Calendar, rng: random.Random) -> None:
    """The register's natural history: years of opt-outs, minors and consents, and requests
    arriving before and during the period."""
    n = reg.n

    def past() -> int:
        t = cal.start - rng.randint(2 * DAY, 730 * DAY)
        return t - t % MINUTE

    def recent() -> int:
        t = rng.randint(cal.start, cal.end - HOUR)
        return t - t % MINUTE

    def some(share: float) -> range:
        return range(max(1, round(share * n)))

    for _ in some(0.03):
        reg.add(reg.take(rng), "marketing_opt_out", past() if rng.random() < 0.85 else recent())
    for _ in some(0.015):
        reg.add(reg.take(rng), "minor", past())
    for _ in some(0.02):
        purposes = ("marketing",) if rng.random() < 0.7 else ("marketing", "analytics")
        reg.add(reg.take(rng), "consent_granted", past(), purposes)
    for _ in some(0.005):
        s = reg.take(rng)
        granted = past()
        if rng.random() < 0.5:
            reg.add(s, "consent_granted", granted - 30 * DAY, ("marketing",))
        reg.add(s, "consent_withdrawn", granted if rng.random() < 0.6 else recent(),
                None if rng.random() < 0.5 else ("marketing",))
    for _ in some(0.003):
        s = reg.take(rng)
        at = past() if rng.random() < 0.5 else recent()
        reg.add(s, "erasure_requested", at)
        if rng.random() < 0.25:
            reg.add(s, "cleared", at + rng.randint(1, 5) * DAY)
    for kind in ("suspension_requested", "restricted"):
        for _ in some(0.001):
            reg.add(reg.take(rng), kind, past() if rng.random() < 0.5 else recent())
