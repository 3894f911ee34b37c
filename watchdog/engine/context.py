"""Everything a rule may ask about one event, computed once per event by the engine."""

from __future__ import annotations

import msgspec

from watchdog.events import AccessEvent, DirectoryRecord
from watchdog.policy.model import Grants, Policy, Role
from watchdog.state.accounts import Accounts
from watchdog.state.subjects import SubjectRegister, SubjectState


# A Struct rather than a slots dataclass: one is built for every event, and a Struct's
# ``__init__`` is C (about a third of the dataclass's). Never encoded; no cycles (gc=False).
class Context(msgspec.Struct, gc=False):
    ev: AccessEvent
    t: float  # event time, epoch seconds
    policy: Policy
    actor: DirectoryRecord | None  # directory record in force at t; None: unknown account
    grants: Grants  # what the actor's roles at t allow (directory's roles win over the event's)
    personal: bool
    register: SubjectRegister
    accounts: Accounts  # the identity provider's account state (1.1)

    @property
    def roles(self) -> tuple[Role, ...]:
        return self.grants.roles

    @property
    def user_id(self) -> str:
        return self.ev.user.id

    @property
    def event_id(self) -> str:
        return self.ev.event.id

    @property
    def action(self) -> str:
        return self.ev.event.action

    @property
    def resource(self) -> str:
        return self.ev.data.resource or "(unnamed resource)"

    @property
    def purpose(self) -> str | None:
        return self.ev.data.purpose or None

    def subject_states(self) -> list[tuple[str, SubjectState]]:
        """(subject id, state at t) for the touched subjects that the register knows."""
        reg, t = self.register, self.t
        return [(s, reg.at(s, t)) for s in self.ev.data.subject_ids if s in reg]

    def allowed_categories(self) -> frozenset[str]:
        return self.grants.categories

    def describe(self) -> str:
        """"account e1 export of crm.customers" — the common opening of a summary."""
        return f"account {self.user_id} {self.action} of {self.resource}"
