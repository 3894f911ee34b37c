"""Plan drawn insider cases into a world, after its training part.

::

    world, cases = drawn_world(SimConfig(accounts=500, days=38, seed=201,
                                         violations_per_rule=0, benign_per_kind=0),
                               per_family=8, train_days=14)

Each case has its own seed (``derive(seed, "drawn", accounts, family, k)``), so the cases of
one family do not move when another family's count changes, and organisations of different
sizes with the same seed draw different cases (not the same first few again). Long cases
(they make an account a leaver) are planned first; a case the period or the staff has no room
for is skipped and named in ``Planned.skipped``, never half planned.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from watchdog.simulate.clock import DAY
from watchdog.simulate.config import SimConfig
from watchdog.simulate.drawn.case import Case
from watchdog.simulate.drawn.inject import RULE, long_case, short_case
from watchdog.simulate.drawn.params import FAMILIES, LONG, draw
from watchdog.simulate.ids import derive
from watchdog.simulate.scenarios.context import Context, NoRoom
from watchdog.simulate.scenarios.registry import Scenario
from watchdog.simulate.world import World, build_world


def _no_injector(_ctx: Context, _rng: random.Random) -> None:
    raise AssertionError("drawn cases are planned by plan_cases, not by the registry")


SCENARIOS = {f: Scenario(f"drawn_{f}", RULE, (RULE,), _no_injector, False,
                         f"A drawn insider case of the '{f}' family.") for f in FAMILIES}


def default_per_family(accounts: int) -> int:
    """Cases of each family for an organisation of ``accounts`` (3 at 100, 12 at 500, 20 at
    2,000): enough to measure, few enough that peers stay mostly ordinary."""
    return max(3, min(20, accounts // 40))


@dataclass
class Planned:
    cases: list[Case] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def plan_cases(ctx: Context, seed: int, per_family: int, not_before: int,
               families: tuple[str, ...] = FAMILIES) -> Planned:
    """Plan ``per_family`` cases of each family, each starting at or after ``not_before``
    (epoch ms: the end of the training part)."""
    out = Planned()
    pool = ctx.register.normal_pool()
    work = [d for d in ctx.cal.days
            if d.workday and d.start >= not_before and d.end <= ctx.cal.end - DAY]
    order = sorted(((f, k) for f in families for k in range(per_family)),
                   key=lambda fk: (fk[0] not in LONG, fk[1], fk[0]))
    for family, k in order:
        rng = random.Random(derive(seed, "drawn", ctx.cfg.accounts, family, k))
        case_id = f"{family}-{k}"
        try:
            p = draw(rng, family, max_workdays=len(work))
        except ValueError:
            out.skipped.append(case_id)
            continue
        ctx.begin(SCENARIOS[family])
        try:
            if family in LONG:
                case = long_case(ctx, rng, p, case_id, not_before, pool)
            else:
                case = short_case(ctx, rng, p, case_id, not_before, pool)
        except (NoRoom, ValueError):
            if not ctx.untouched():  # half planned: a bug, not a small world
                raise
            ctx.abandon()
            out.skipped.append(case_id)
            continue
        ctx.end()
        out.cases.append(case)
    return out


def drawn_world(cfg: SimConfig, per_family: int, train_days: int,
                families: tuple[str, ...] = FAMILIES) -> tuple[World, Planned]:
    """``build_world(cfg)`` with drawn cases after its first ``train_days`` days."""
    got = Planned()
    if train_days >= cfg.days - 3:
        raise ValueError(f"{cfg.days} days leave no room after {train_days} training days")

    def extra(ctx: Context) -> None:
        nonlocal got
        got = plan_cases(ctx, cfg.seed, per_family, ctx.cal.start + train_days * DAY,
                         families)

    world = build_world(cfg, extra=extra)
    return world, got
