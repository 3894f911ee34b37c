"""Plan every scenario up front: ``violations_per_rule`` per rule, cycling through the
rule's scenarios, then ``benign_per_kind`` of each benign one, then ``insiders`` cases of
each insider scenario (``watchdog.simulate.insiders``, opt-in: not in the registry). Each
(rule, k) has its own seed, and scenarios that need time to themselves (silences) are placed
first, so the plan is the same whatever else is registered for other rules; insiders come
last, so with none the plan is exactly the one without them.

A scenario the period has no room for (a working-day scenario in a weekend) is skipped and
named in ``ctx.skipped``, rather than failing the whole simulation. Last, every erasure
request that no scenario left open on purpose is fulfilled (see ``erasures``)."""

from __future__ import annotations

import random

from watchdog.simulate.catalog import RULES
from watchdog.simulate.ids import derive
from watchdog.simulate.scenarios.context import Context, NoRoom
from watchdog.simulate.scenarios.erasures import fulfil_erasures
from watchdog.simulate.scenarios.registry import BENIGN, Scenario, for_rule


def _run(ctx: Context, sc: Scenario, rng: random.Random) -> None:
    ctx.begin(sc)
    try:
        sc.inject(ctx, rng)
    except NoRoom:
        if not ctx.untouched():  # half planned: a bug in the scenario, not a short period
            raise
        ctx.skipped.append(sc.name)
        ctx.abandon()
        return
    ctx.end()


def plan(ctx: Context, seed: int, per_rule: int, benign_per_kind: int,
         insiders: int = 0) -> None:
    jobs: list[tuple[Scenario, int]] = []
    for rule in RULES:
        variants = for_rule(rule)
        for k in range(per_rule if variants else 0):
            jobs.append((variants[k % len(variants)], k))
    jobs.sort(key=lambda j: not j[0].exclusive)  # stable: silences first
    for sc, k in jobs:
        _run(ctx, sc, random.Random(derive(seed, "inject", sc.rule, k)))
    for name, sc in BENIGN.items():
        for k in range(benign_per_kind):
            _run(ctx, sc, random.Random(derive(seed, "benign", name, k)))
    if insiders:
        # imported here: the insider scenarios build on this package (no import cycle)
        from watchdog.simulate.insiders import plan_insiders

        plan_insiders(ctx, seed, insiders)
    fulfil_erasures(ctx, random.Random(derive(seed, "erasures")))
