"""The ground truth of one drawn case: who, what, when, how strong, and what was injected."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Case:
    """One injected insider case, as an evaluation scores it.

    ``start_ms``/``end_ms`` are its first and last injected event (epoch ms);
    ``duration_ms`` the span it was drawn for (short families) or the span of its working
    days (long ones). ``intensity`` is the drawn multiple of the account's usual rate
    ``usual`` (in ``unit``); ``achieved`` the multiple actually injected at the peak (it
    differs from ``intensity`` by chance, and where a cap applied). ``ramp_from_ms`` is when
    a short case's rate starts (its ramp, if gradual, spans the first half of
    ``duration_ms``); ``days_ms`` when each working day of a long case starts (its day ``j``
    at the ramp's ``j / (workdays - 1)``). Both are absent from cases written before them."""

    case_id: str
    family: str
    user_id: str
    role: str
    intensity: float
    achieved: float
    onset: str
    time_of_day: str
    start_ms: int
    end_ms: int
    duration_ms: int
    workdays: int
    events: int
    subjects: int
    usual: float
    unit: str
    leaver: bool = False
    notice_at_ms: int | None = None
    departs_ms: int | None = None
    new_address: bool = False
    ramp_from_ms: int | None = None
    days_ms: tuple[int, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Case:
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in doc.items() if k in names}
        if "days_ms" in kept:
            kept["days_ms"] = tuple(kept["days_ms"])
        return cls(**kept)
