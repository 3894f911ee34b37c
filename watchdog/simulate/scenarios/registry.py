"""The scenario registry: scenario name -> injector.

A violation scenario demonstrates one contract rule (``rule``) and may, by design, raise a
few others (``raises``, which always includes ``rule``); the planner runs
``violations_per_rule`` scenarios per rule, cycling through that rule's scenarios. A benign
scenario (``rule`` None) plans lawful edge cases that must raise nothing.

To add one (e.g. the insider patterns a later ``anomaly`` issue needs: a leaver's exports
rising for weeks, a quiet account suddenly touching payment data), write a function
``(ctx, rng) -> None`` that plans events through the
:class:`~watchdog.simulate.scenarios.context.Context` and declares the alerts it expects
with ``ctx.expect``, and decorate it::

    @scenario("leaver_exports_rising", rule="anomaly", raises=("anomaly",))
    def leaver_exports_rising(ctx: Context, rng: random.Random) -> None: ...

Nothing else changes: the planner picks it up for its rule.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog.simulate.scenarios.context import Context

Injector = Callable[["Context", random.Random], None]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    rule: str | None  # None: benign
    raises: tuple[str, ...]
    inject: Injector
    exclusive: bool = False  # needs a stretch of time to itself (planned first)
    description: str = ""


SCENARIOS: dict[str, Scenario] = {}
BENIGN: dict[str, Scenario] = {}


def _summary(fn: Injector) -> str:
    """The docstring's first paragraph, on one line."""
    return " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())


def scenario(name: str, rule: str, *, raises: tuple[str, ...] | None = None,
             exclusive: bool = False) -> Callable[[Injector], Injector]:
    """Register a violation scenario for ``rule``."""
    def deco(fn: Injector) -> Injector:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        got = raises or (rule,)
        if rule not in got:
            raise ValueError(f"scenario {name!r} must raise its own rule {rule!r}")
        SCENARIOS[name] = Scenario(name, rule, got, fn, exclusive, _summary(fn))
        return fn
    return deco


def benign(name: str) -> Callable[[Injector], Injector]:
    """Register a lawful edge case that must raise no alert."""
    def deco(fn: Injector) -> Injector:
        BENIGN[name] = Scenario(name, None, (), fn, False, _summary(fn))
        return fn
    return deco


def for_rule(rule: str) -> list[Scenario]:
    return [s for s in SCENARIOS.values() if s.rule == rule]
