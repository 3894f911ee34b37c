"""Erasure requests kept (contract 1.1 ``erasure_overdue``): every request in the register
that no scenario leaves open on purpose is fulfilled in time, so that clean history raises
nothing.

A request whose deadline falls inside the period gets a successful ``delete`` by the
owning system's batch account, in each resource it names (any resource when it names none),
between the request and the deadline; one whose whole window lies before the period was
fulfilled then, and the register shows it ``cleared``.
"""

from __future__ import annotations

import random
from collections import defaultdict

from watchdog.simulate.clock import DAY, HOUR, MINUTE
from watchdog.simulate.ids import subject_id
from watchdog.simulate.register import SubjectRecord
from watchdog.simulate.scenarios.context import Context

# resource -> (dataset, categories, purpose) of the batch account that deletes there
DELETERS = {
    "crm.customers": ("crm.audit", ("identity", "contact"), "customer_support"),
    "crm.orders": ("crm.audit", ("purchase",), "order_fulfilment"),
    "billing.invoices": ("billing.audit", ("identity", "payment"), "billing"),
}
DEFAULT_RESOURCE = "crm.customers"


def deleted(ctx: Context, subject: str, resource: str | None, lo: int, hi: int) -> bool:
    """Is a successful delete of ``subject`` in ``resource`` (any, if None) planned in
    [lo, hi]?"""
    for ts, _, ev in ctx.planned:
        data = ev.get("data") or {}
        if (lo <= ts <= hi and ev["event"]["action"] == "delete"
                and ev["event"]["outcome"] == "success"
                and subject in data.get("subject_ids", ())
                and (resource is None or data.get("resource") == resource)):
            return True
    return False


def delete(ctx: Context, at: int, subject: str, resource: str) -> None:
    dataset, cats, purpose = DELETERS[resource]
    ctx.access(at, ctx.services[dataset], dataset, "delete", resource, cats, purpose=purpose,
               ids=[subject])


def fulfil_erasures(ctx: Context, rng: random.Random) -> None:
    span = int(ctx.thresholds["erasure_days"] * DAY)
    history: dict[int, list[SubjectRecord]] = defaultdict(list)
    for r in ctx.register.records:
        history[r.subject].append(r)
    for r in list(ctx.register.records):
        if r.type != "erasure_requested" or (r.subject, r.at) in ctx.overdue_erasures:
            continue
        deadline = r.at + span
        if any(o is not r and r.at < o.at <= deadline
               and o.type in ("cleared", "erasure_requested") for o in history[r.subject]):
            continue  # cancelled in time
        if deadline > ctx.cal.end + HOUR:
            continue  # judged after the period
        sid = subject_id(r.subject)
        lo, hi = max(r.at, ctx.cal.start + HOUR), deadline - 10 * MINUTE
        if lo >= hi:  # fulfilled before the period: the register closed the request
            ctx.register.add(r.subject, "cleared", r.at + rng.randint(HOUR, span - HOUR))
            continue
        for resource in r.resources or (None,):
            if not deleted(ctx, sid, resource, r.at, deadline):
                t = rng.randint(lo, hi)
                delete(ctx, t - t % MINUTE, sid, resource or DEFAULT_RESOURCE)
