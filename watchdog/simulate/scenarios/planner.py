"""Plan every scenario up front: ``violations_per_rule`` per rule, cycling through the
rule's scenarios, then ``benign_per_kind`` of each benign one, then ``insiders`` cases of
each insider scenario (``watchdog.simulate.insiders``, opt-in: not in the registry). Each
(rule, k) has its own seed, and scenarios that need time to themselves (silences) are placed
first, so the plan is the same whatever else is registered for other rules; insiders come
last, so with none the plan is exactly the one without them."""

from __future__ import annotations

import random

from watchdog.simulate.catalog import RULES
from watchdog.simulate.ids import derive
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import BENIGN, Scenario, for_rule


def plan(ctx: Context, seed: int, per_rule: int, benign_per_kind: int,
         insiders: int = 0) -> None:
    jobs: list[tuple[Scenario, int]] = []
    for rule in RULES:
        variants = for_rule(rule)
        for k in range(per_rule if variants else 0):
            jobs.append((variants[k % len(variants)], k))
    jobs.sort(key=lambda j: not j[0].exclusive)  # stable: silences first
    for sc, k in jobs:
        ctx.begin(sc)
        sc.inject(ctx, random.Random(derive(seed, "inject", sc.rule, k)))
        ctx.end()
    for name, sc in BENIGN.items():
        for k in range(benign_per_kind):
            ctx.begin(sc)
            sc.inject(ctx, random.Random(derive(seed, "benign", name, k)))
            ctx.end()
    if insiders:
        # imported here: the insider scenarios build on this package (no import cycle)
        from watchdog.simulate.insiders import plan_insiders

        plan_insiders(ctx, seed, insiders)
