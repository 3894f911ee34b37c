"""What a rule is: one small pure object, event context in, findings out.

Each rule module defines one class derived from :class:`RuleBase`. Its class attributes are
data the engine interprets (h11 style): which actions it looks at, which facts an event must
have (``needs``: personal data, a destination, a known subject...), whether it must see events
in event-time order (``ordered``), which rules' findings on the same event it supersedes, and
whether it keeps windows (``windowed``: the engine evicts idle keys). ``check`` does the rest
and may keep bounded state (windows) that survives a policy reload, because the policy is
passed in with every event.

An :class:`Obligation` is a rule with a deadline (contract 1.1): a record starts it, the
engine's due-time queue (:mod:`watchdog.engine.obligations`) judges it once event time passes
the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from watchdog.engine.context import Context
    from watchdog.engine.facts import Facts
    from watchdog.events import AccountRecord, DirectoryRecord, SubjectRecord
    from watchdog.policy.model import Policy

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


class RuleBase:
    id: ClassVar[str]
    severity: ClassVar[Severity]
    # the commitment in words, for the summary when the policy cites no clause
    commitment: ClassVar[str]
    # None: every action; otherwise only these (the engine does not call it for others)
    actions: ClassVar[frozenset[str] | None] = None
    # bits of ``watchdog.rules.needs``: called only for events that have all these facts
    needs: ClassVar[int] = 0
    # the verdict depends on other events (windows, sequences, silences, deadlines): it must
    # see events in event-time order, so the daemon runs it as the reorder buffer releases
    # them; every other rule judges an event alone and may run on its arrival
    ordered: ClassVar[bool] = False
    # rules whose findings on the same event this rule's finding replaces
    supersedes: ClassVar[tuple[str, ...]] = ()
    # keeps per-key windows on event time: :meth:`evict` and :meth:`tracked` mean something
    windowed: ClassVar[bool] = False
    # an Obligation (deadlines on a due-time queue)
    deadlines: ClassVar[bool] = False

    def check(self, ctx: Context) -> list[Finding] | None:
        raise NotImplementedError

    def enabled(self, policy: Policy) -> bool:
        """Can this policy make the rule fire at all? (False: the engine does not call it:
        e.g. no ``consent_purposes``, nothing for ``consent_missing`` to judge)"""
        return True

    def evict(self, before: float) -> int:
        """Forget window entries idle since before ``before`` (event time); how many."""
        return 0

    def tracked(self) -> int:
        """Keys (accounts, datasets...) this rule keeps state for."""
        return 0

    def forgetting(self) -> tuple[int, int]:
        """Keys forgotten so far: (idle past the rule's window, dropped past its cap)."""
        return 0, 0

    def snapshot(self) -> Any:
        """The state ``check`` keeps, for a checkpoint (:mod:`watchdog.engine.snapshot`): what
        msgpack encodes (lists, tuples, sets, str-keyed dicts, dataclasses of those, numbers,
        str, bool, None), the rule's own structures as they are (no copy: a capture is encoded
        before the next event changes them); None: none kept."""
        return None

    def restore(self, snap: Any) -> None:
        """Take back what :meth:`snapshot` returned (in a fresh rule, before any event)."""


Rule = RuleBase


class Obligation(RuleBase):
    """A promise with a deadline: a record starts it (:meth:`start` returns the due times it
    opens, each with a key unique within the rule); once event time passes a deadline, the
    engine calls :meth:`judge` with that key and the facts; the key is then forgotten.
    ``check`` sees the ordered events in between (e.g. the deletes that fulfil a request)."""

    ordered: ClassVar[bool] = True
    deadlines: ClassVar[bool] = True

    def start(self, rec: DirectoryRecord | SubjectRecord | AccountRecord, written: str,
              facts: Facts) -> list[tuple[float, str]]:
        return []

    def judge(self, key: str, deadline: float, facts: Facts) -> list[Finding]:
        raise NotImplementedError

    def open(self) -> int:
        """Obligations started and not yet judged."""
        return 0
