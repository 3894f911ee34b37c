"""Turning a behaviour :class:`~watchdog.simulate.behaviour.Step` into an event's ``data``
and ``destination``: who was touched, how many, for what, collected when."""

from __future__ import annotations

import random
from typing import Any

from watchdog.simulate.behaviour import DESTINATIONS, Step
from watchdog.simulate.clock import DAY
from watchdog.simulate.render import EXPORT_ACTIONS, Factory


class StepRunner:
    def __init__(self, factory: Factory, pool: list[str], employees: list[str]) -> None:
        self.factory = factory
        self.pool = pool
        self.employees = employees

    def data(self, step: Step, ms: int, rng: random.Random, cur: list[Any],
             budget: list[int]) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """``cur[0]`` is the task's current subject; ``budget[0]`` how many subjects the
        account may still take out today. None: the step would exceed the budget."""
        mode = step.subjects
        rnd = rng.random
        lo, hi = step.n
        k = lo + int(rnd() * (hi - lo + 1))
        data: dict[str, Any] = {"resource": step.resource}
        if step.categories:
            data["categories"] = list(step.categories)
        amount = 0
        if mode != "none":
            if mode == "count":
                amount = k
                if step.action in EXPORT_ACTIONS:
                    amount = min(amount, budget[0])
                    if amount < 1:
                        return None
                data["subject_count"] = amount
            else:
                if mode == "new" or (mode == "same" and cur[0] is None):
                    pool = self.pool
                    ids = [pool[int(rnd() * len(pool))]]
                elif mode == "same":
                    ids = [cur[0]]
                elif mode == "several":
                    pool = self.pool
                    ids = list(dict.fromkeys(
                        pool[int(rnd() * len(pool))] for _ in range(k)))
                elif mode == "employee":
                    emp = self.employees
                    ids = [emp[int(rnd() * len(emp))]]
                else:  # employees
                    emp = self.employees
                    ids = list(dict.fromkeys(
                        emp[int(rnd() * len(emp))] for _ in range(k)))
                cur[0] = ids[0]
                amount = len(ids)
                data["subject_ids"] = ids
            data["records"] = amount
        if step.action in EXPORT_ACTIONS and amount:
            if amount > budget[0]:
                return None
            budget[0] -= amount
        if step.purpose:
            data["purpose"] = step.purpose
        if step.anonymized:
            data["anonymized"] = True
        if step.max_age_days:
            data["collected_at"] = self.factory.collected(
                ms - int(rnd() * step.max_age_days * DAY))
        dest = None
        if step.dest:
            choices = DESTINATIONS[step.dest]
            dest = dict(choices[int(rnd() * len(choices))])
        return data, dest
