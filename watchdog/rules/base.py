"""What a rule is: one small pure object, event context in, findings out.

Each rule module defines one class satisfying :class:`Rule`. Its class attributes are data the
engine interprets (h11 style): which actions it looks at, which facts an event must have
(``needs``: personal data, a destination, a known subject...), which rules it supersedes.
``check`` does the rest and may keep bounded state (windows) that survives a policy reload,
because the policy is passed in with every event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from watchdog.engine.context import Context

Severity = Literal["critical", "high", "medium", "low"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation; the engine turns it into an :class:`~watchdog.alerts.model.Alert`."""

    rule: str
    summary: str
    # ids of the events that together make the violation; the last completes it
    event_ids: tuple[str, ...]
    # raw subject ids involved; pseudonymised before they leave the engine
    subject_ids: tuple[str, ...] = ()
    subject_count: int = 0
    # distinguishes two violations of one rule completed by the same event (alert_id input)
    key: str = ""
    severity: Severity | None = None  # None: the rule's default
    user_id: str | None = None  # None: the event's account (log_gap names the dataset)
    labels: dict[str, str] = field(default_factory=dict)
    score: float | None = None
    explanation: dict[str, object] | None = None


class Rule(Protocol):
    id: ClassVar[str]
    severity: ClassVar[Severity]
    # the commitment in words, for the summary when the policy cites no clause
    commitment: ClassVar[str]
    # None: every action; otherwise only these (the engine does not call it for others)
    actions: ClassVar[frozenset[str] | None]
    # bits of ``watchdog.rules.needs``: called only for events that have all these facts
    needs: ClassVar[int]

    def check(self, ctx: Context) -> list[Finding] | None: ...


class Windowed(Protocol):
    """A rule that keeps per-key windows on event time; the engine evicts idle keys."""

    def evict(self, before: float) -> int: ...

    def tracked(self) -> int: ...
