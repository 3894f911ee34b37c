"""The facts a rule reads besides the event: the policy, the directory (HR), the subject
register and the identity provider's accounts, as one object passed explicitly.

The engine owns one; a second engine over the same stream (the daemon's whole-stream reader)
shares the state parts, so both judge against the same records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from watchdog.policy.model import Policy
from watchdog.state.accounts import Accounts
from watchdog.state.directory import Directory
from watchdog.state.subjects import SubjectRegister


@dataclass(slots=True)
class Facts:
    policy: Policy
    # raw subject id -> keyed-hash pseudonym (no raw subject id leaves the engine)
    pseudonymize: Callable[[str], str]
    directory: Directory = field(default_factory=Directory)
    register: SubjectRegister = field(default_factory=SubjectRegister)
    accounts: Accounts = field(default_factory=Accounts)
