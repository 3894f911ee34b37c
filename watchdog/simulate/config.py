"""What to simulate: size, period, seed and how many violations (and insiders) to inject."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")


@dataclass(frozen=True)
class SimConfig:
    """A simulated organisation; the same config always gives byte-identical output.

    ``events_per_account_per_day`` is the mean for a regular employee on a working day
    (logins included); weekends, holidays, absences and each role's workload scale it.
    The default gives about 1.3 M events for 2,000 accounts over 30 days.
    ``benign_per_kind`` is how many lawful edge cases (a delete after an erasure request,
    support work for a minor, a consented partner share, ...) of each kind are planned.
    ``insiders`` is how many cases of each insider scenario (``watchdog.simulate.insiders``:
    behaviour for the ``anomaly`` model, after the first 40% of the period) are planned; 0,
    the default, plans none and leaves the output exactly as without the option.
    """

    seed: int = 7
    accounts: int = 2000
    subjects: int | None = None  # default: 20 per account
    start: datetime = datetime(2026, 11, 1, tzinfo=JST)
    days: int = 30
    violations_per_rule: int = 5
    events_per_account_per_day: float = 34.0
    benign_per_kind: int = 3
    insiders: int = 0  # cases per insider scenario

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be an aware datetime (with a UTC offset)")
        if self.accounts < 100:
            raise ValueError("accounts must be at least 100")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.violations_per_rule < 0 or self.benign_per_kind < 0 or self.insiders < 0:
            raise ValueError("violations_per_rule, benign_per_kind and insiders must be >= 0")
        if self.events_per_account_per_day <= 0:
            raise ValueError("events_per_account_per_day must be positive")
        if self.subjects is not None and self.subjects < 200:
            raise ValueError("subjects must be at least 200")

    @property
    def subject_count(self) -> int:
        return self.subjects if self.subjects is not None else 20 * self.accounts
