"""Insider scenarios for the ``anomaly`` rule: behaviour no single rule names, but that
stands out from what an account and its peers usually do.

- ``leaver_exports_rising``: a support agent about to leave takes out a little more every
  working day for three weeks (downloads to the internal share, each lawful on its own),
  then departs;
- ``after_hours_usb``: a support agent logs in at night from an address it never used,
  browses customers and copies some to a USB stick;
- ``many_customers_browse``: a support agent reads a couple of hundred unrelated customers
  one after the other in an afternoon;
- ``quiet_account_payment``: a quiet engineering account suddenly reads customers' payment
  data.

Every injected event is declared in the ground truth as ``anomaly``, plus every rule it
also breaks (``off_hours_access`` for the night session, ``external_media`` for its USB
copies, ``category_not_permitted`` for the engineer's payment reads), so an evaluation can
tell which anomaly alerts were earned and every rule alert the insiders cause is a true
positive; nothing else they do crosses a rule (the leaver's downloads stay below
``bulk_export``'s thresholds, all of it from internal addresses). The scenarios happen after
the first 40% of the period (``NOT_BEFORE``), which stays a clean baseline to train on.

They are not in the scenario registry (``violations_per_rule`` never plans them); ask for
them with ``SimConfig(insiders=N)`` or ``watchdog simulate --insiders N`` (``N`` cases of
each), which the planner plans after every other scenario, with their own seeds.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any

from watchdog.simulate.clock import DAY, HOUR, MINUTE, SECOND
from watchdog.simulate.config import SimConfig
from watchdog.simulate.ids import derive
from watchdog.simulate.org import Account
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import Scenario

if TYPE_CHECKING:
    from watchdog.simulate.world import World

RULE = "anomaly"
NOT_BEFORE = 0.4  # share of the period kept free of insiders (the training baseline)
_SHARE: dict[str, Any] = {"kind": "internal", "domain": "files.hikari.example"}
_USB: dict[str, Any] = {"kind": "external_media"}
_CS = "customer_support"


def _not_before(ctx: Context) -> int:
    cal = ctx.cal
    return cal.start + int(NOT_BEFORE * (cal.end - cal.start))


def _time(ctx: Context, rng: random.Random, kind: str, duration: int) -> int:
    """A start time of ``kind`` (see ``Context.when``) after the baseline part."""
    lo = _not_before(ctx)
    for _ in range(400):
        t = ctx.when(rng, kind, duration)
        if t >= lo:
            return t
    raise ValueError(f"no '{kind}' time after the baseline part of the period for an insider "
                     "scenario: simulate more days")


def _new_address(rng: random.Random) -> str:
    """An internal address no office, VPN pool or batch host uses (10.100-199.x.x)."""
    return f"10.{rng.randint(100, 199)}.{rng.randint(0, 250)}.{rng.randint(2, 250)}"


def leaver_exports_rising(ctx: Context, rng: random.Random) -> None:
    """A leaver's downloads rise day by day for three weeks before the departure."""
    lo = _not_before(ctx)
    workdays = [d for d in ctx.cal.days if d.workday]
    last_ok = ctx.cal.end - DAY
    for span in (21, 14, 10):
        cands = [d for d in workdays if d.start >= lo + span * DAY and d.end <= last_ok]
        if cands:
            break
    else:
        raise ValueError("the period is too short for the leaver insider scenario (it needs a "
                         "working day 10 days or more after the first 40% of the period and "
                         "before its last day): simulate more days")
    leave_day = rng.choice(cands)
    days = [d for d in workdays if leave_day.start - span * DAY <= d.start < leave_day.start
            and d.start >= lo]
    days = [d for i, d in enumerate(days) if i == len(days) - 1 or rng.random() < 0.8]
    peak = rng.uniform(14, 22)
    acct: Account | None = None
    for i, day in enumerate(reversed(days)):  # the last (biggest) day picks the account
        p = (len(days) - i) / len(days)
        n = max(1, round(1 + peak * p * p))
        gap = rng.randint(60, 240) * SECOND
        duration = n * gap
        start = rng.randint(day.open + 70 * MINUTE, day.close - 70 * MINUTE - duration)
        start -= start % SECOND
        if acct is None:
            acct = ctx.actor(rng, "support_agent", start, start + duration, quiet=True,
                             lifecycle=True)
        else:
            ctx.reserve(acct, start, start + duration, quiet=True)
        t = start
        for _ in range(n):
            resource, cats = rng.choice((
                ("crm.customers", ("identity", "contact", "address")),
                ("crm.orders", ("identity", "address", "purchase")),
                ("crm.customers", ("identity", "contact"))))
            ev = ctx.access(t, acct, "crm.audit", rng.choice(("download", "export")), resource,
                            cats, purpose=_CS, ids=ctx.customers(rng, rng.randint(5, 25)),
                            dest=_SHARE)
            ctx.expect(ev, RULE)
            t += gap
    assert acct is not None
    ctx.depart(acct, leave_day.close + HOUR)


def after_hours_usb(ctx: Context, rng: random.Random) -> None:
    """At night, from an address it never used, an account browses customers and copies
    some of them to a USB stick."""
    duration = rng.randint(40, 90) * MINUTE
    t = _time(ctx, rng, "night", duration)
    acct = ctx.actor(rng, "support_agent", t, t + duration, quiet=True)
    ip, host = _new_address(rng), f"pc-{rng.randint(1000, 9999)}"
    end = t + duration
    ctx.login(t, acct, ip=ip)
    t += rng.randint(30, 120) * SECOND
    reads = rng.randint(8, 25)
    step = (end - t) // (reads + 4)
    for _ in range(reads):
        ev = ctx.access(t, acct, "crm.audit", rng.choice(("search", "read")), "crm.customers",
                        ("identity", "contact", "address"), purpose=_CS,
                        ids=ctx.customers(rng, rng.randint(1, 5)), ip=ip, host=host)
        ctx.expect(ev, RULE)
        ctx.expect(ev, "off_hours_access")
        t += step
    for _ in range(rng.randint(1, 3)):
        ev = ctx.access(t, acct, "crm.audit", "copy", "crm.customers",
                        ("identity", "contact", "address"), purpose=_CS,
                        ids=ctx.customers(rng, rng.randint(15, 60)), dest=_USB, ip=ip,
                        host=host)
        ctx.expect(ev, RULE)
        ctx.expect(ev, "off_hours_access")
        ctx.expect(ev, "external_media")
        t += step
    ctx.login(t, acct, ip=ip, action="logout")


def many_customers_browse(ctx: Context, rng: random.Random) -> None:
    """An account reads a couple of hundred unrelated customers, one after the other."""
    n = rng.randint(120, 260)
    gaps = [rng.randint(12, 45) * SECOND for _ in range(n)]
    duration = sum(gaps)
    t = _time(ctx, rng, "business", duration)
    acct = ctx.actor(rng, "support_agent", t, t + duration)
    for gap in gaps:
        ev = ctx.access(t, acct, "crm.audit", rng.choice(("read", "read", "search")),
                        "crm.customers", ("identity", "contact", "address"), purpose=_CS,
                        ids=ctx.customers(rng))
        ctx.expect(ev, RULE)
        t += gap


def quiet_account_payment(ctx: Context, rng: random.Random) -> None:
    """A quiet engineering account suddenly reads customers' payment data."""
    n = rng.randint(6, 15)
    gap = rng.randint(60, 200) * SECOND
    duration = n * gap
    t = _time(ctx, rng, "business", duration)
    acct = ctx.actor(rng, "engineer", t, t + duration)
    for _ in range(n):
        resource, cats = rng.choice((("billing.payment_methods", ("payment",)),
                                     ("billing.invoices", ("identity", "payment"))))
        ev = ctx.access(t, acct, "billing.audit", "read", resource, cats,
                        purpose="troubleshooting", ids=ctx.customers(rng))
        ctx.expect(ev, RULE)
        ctx.expect(ev, "category_not_permitted")
        t += gap


INSIDERS: dict[str, Scenario] = {
    sc.name: sc for sc in (
        Scenario("leaver_exports_rising", RULE, (RULE,), leaver_exports_rising, False,
                 "A leaver's downloads rise day by day for three weeks before the departure."),
        Scenario("after_hours_usb", RULE, (RULE, "off_hours_access", "external_media"),
                 after_hours_usb, False,
                 "At night, from a new address, an account browses customers and copies some "
                 "to a USB stick."),
        Scenario("many_customers_browse", RULE, (RULE,), many_customers_browse, False,
                 "An account reads a couple of hundred unrelated customers in an afternoon."),
        Scenario("quiet_account_payment", RULE, (RULE, "category_not_permitted"),
                 quiet_account_payment, False,
                 "A quiet engineering account suddenly reads customers' payment data."),
    )
}


def plan_insiders(ctx: Context, seed: int, per_scenario: int) -> None:
    """Inject ``per_scenario`` cases of every insider scenario (own seeds per case); the
    planner calls it for ``SimConfig.insiders``."""
    for name, sc in INSIDERS.items():
        for k in range(per_scenario):
            ctx.begin(sc)
            sc.inject(ctx, random.Random(derive(seed, "insider", name, k)))
            ctx.end()


def insider_world(cfg: SimConfig, per_scenario: int = 5) -> World:
    """``build_world`` of ``cfg`` with ``per_scenario`` cases of each insider scenario
    (shorthand for ``build_world(dataclasses.replace(cfg, insiders=per_scenario))``)."""
    from watchdog.simulate.world import build_world

    return build_world(dataclasses.replace(cfg, insiders=per_scenario))
