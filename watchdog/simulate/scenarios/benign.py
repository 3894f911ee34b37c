"""Lawful edge cases: work on registered subjects that the rules must let pass.

Clean traffic never touches a subject the register knows; these scenarios do, lawfully,
so that a replay exercises the exemptions (delete is always allowed, the grace period,
``cleared``, purposes allowed for minors, opt-outs only stop marketing, consent makes a
partner share lawful).
"""

from __future__ import annotations

import random

from watchdog.simulate import catalog as C
from watchdog.simulate.clock import DAY, HOUR, MINUTE, SECOND
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import benign


@benign("erasure_verified_and_deleted")
def erasure_verified_and_deleted(ctx: Context, rng: random.Random) -> None:
    """An erasure request: support checks the customer within the grace period, deletes,
    and a DBA deletes the remaining rows days later (delete is always allowed)."""
    t, a = ctx.slot(rng, "support_agent", "business", 60 * MINUTE)
    s = ctx.registered(rng, ("erasure_requested", t - rng.randint(1, 40) * HOUR))
    ctx.access(t, a, "crm.audit", "read", "crm.customers", ("identity", "contact"),
               purpose="customer_support", ids=[s])
    ctx.access(t + rng.randint(5, 40) * MINUTE, a, "crm.audit", "delete", "crm.customers",
               ("identity", "contact", "address"), purpose="customer_support", ids=[s])
    later, d = ctx.slot(rng, "dba", "business", 10 * MINUTE)
    if later > t:
        ctx.access(later, d, "crm.audit", "delete", "crm.orders", ("purchase",),
                   purpose="maintenance", ids=[s])


@benign("grace_period_read")
def grace_period_read(ctx: Context, rng: random.Random) -> None:
    """A read a few hours before the erasure request's grace period ends."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    grace = int(ctx.thresholds["restriction_grace_hours"] * HOUR)
    s = ctx.registered(rng, ("erasure_requested", t - grace + rng.randint(1, 5) * HOUR))
    ctx.access(t, a, "crm.audit", "read", "crm.customers", ("identity", "contact"),
               purpose="customer_support", ids=[s])


@benign("request_cleared")
def request_cleared(ctx: Context, rng: random.Random) -> None:
    """An erasure request later withdrawn (``cleared``): normal service resumes."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    asked = t - rng.randint(6, 30) * DAY
    s = ctx.registered(rng, ("erasure_requested", asked), ("cleared", asked + 2 * DAY))
    ctx.access(t, a, "crm.audit", "update", "crm.customers", ("contact",),
               purpose="customer_support", ids=[s])


@benign("minor_support_and_billing")
def minor_support_and_billing(ctx: Context, rng: random.Random) -> None:
    """A minor's ticket and invoice: purposes allowed for minors."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("minor", t - rng.randint(30, 900) * DAY))
    ctx.access(t, a, "crm.audit", "read", "crm.customers", ("identity", "contact"),
               purpose="customer_support", ids=[s])
    t2, b = ctx.slot(rng, "billing", "business", 5 * MINUTE)
    ctx.access(t2, b, "billing.audit", "read", "billing.invoices", ("identity", "payment"),
               purpose="billing", ids=[s])


@benign("opted_out_gets_support")
def opted_out_gets_support(ctx: Context, rng: random.Random) -> None:
    """An opted-out customer calls support: an opt-out stops marketing only."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("marketing_opt_out", t - rng.randint(1, 500) * DAY))
    ctx.access(t, a, "crm.audit", "read", "crm.customers", ("identity", "contact"),
               purpose="customer_support", ids=[s])


@benign("consented_partner_share")
def consented_partner_share(ctx: Context, rng: random.Random) -> None:
    """A share with a partner that is no processor, of customers who all consented."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    ids = [ctx.registered(rng, ("consent_granted", t - rng.randint(1, 300) * DAY,
                                ("marketing",))) for _ in range(rng.randint(2, 6))]
    name, domain, country = C.PARTNER
    ctx.access(t, a, "mkt.audit", "share", "mkt.profiles", ("contact",), purpose="marketing",
               ids=ids, dest={"kind": "third_party", "organization": name, "domain": domain,
                              "country": country})


@benign("regranted_marketing_consent")
def regranted_marketing_consent(ctx: Context, rng: random.Random) -> None:
    """Consent withdrawn, then granted again for marketing: the latest record wins."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("consent_withdrawn", t - 90 * DAY, ("marketing",)),
                       ("consent_granted", t - rng.randint(1, 60) * DAY, ("marketing",)))
    ctx.access(t + rng.randint(0, 59) * SECOND, a, "mkt.audit", "read", "mkt.profiles",
               ("contact", "preferences"), purpose="marketing", ids=[s])
