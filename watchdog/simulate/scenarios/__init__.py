"""Scenarios: violations injected into the simulated organisation, and lawful edge cases.

``SCENARIOS`` maps a scenario name to its injector (see ``registry`` for how to add one);
importing this package registers the built-in ones.
"""

from watchdog.simulate.scenarios import (  # noqa: F401  (registration side effects)
    access,
    accounts,
    auth,
    benign,
    exfiltration,
    monitoring,
    obligations,
    promises,
    subjects,
)
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.planner import plan
from watchdog.simulate.scenarios.registry import BENIGN, SCENARIOS, Scenario, scenario

__all__ = ["BENIGN", "SCENARIOS", "Context", "Scenario", "plan", "scenario"]
