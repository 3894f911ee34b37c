"""Accounts that should not be acting at all: revoked_account, unknown_account.

By the engine's convention an event that raises one of these raises no
category_not_permitted, purpose_violation or off_hours_access; other rules still apply.
"""

from __future__ import annotations

import random

from watchdog.simulate.clock import DAY, HOUR, MINUTE, SECOND
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import scenario

_ROLES = ("support_agent", "billing", "marketing", "engineer")


def _before(ctx: Context, rng: random.Random, t: int, most: int = 3 * DAY) -> int:
    """A directory change some time before ``t`` (at least an hour into the period)."""
    lo = ctx.cal.start + HOUR
    at = min(max(lo, t - rng.randint(HOUR, most)), t - 30 * MINUTE)
    return at - at % MINUTE


@scenario("departed_relogin", "revoked_account")
def departed_relogin(ctx: Context, rng: random.Random) -> None:
    """A leaver logs in from home a few days later and looks around: every event fires."""
    t, a = ctx.slot(rng, ctx.roomiest(_ROLES), "business", 20 * MINUTE, lifecycle=True)
    ctx.depart(a, _before(ctx, rng, t))
    ip = ctx.external_ip(rng)
    ctx.expect(ctx.login(t, a, ip=ip), "revoked_account")
    ctx.expect(ctx.login(t + rng.randint(60, 600) * SECOND, a, ip=ip, action="logout"),
               "revoked_account")


@scenario("departed_reads_customers", "revoked_account")
def departed_reads_customers(ctx: Context, rng: random.Random) -> None:
    """A support agent who left still badges in and reads customers at the office."""
    t, a = ctx.slot(rng, "support_agent", "business", 20 * MINUTE, lifecycle=True)
    ctx.depart(a, _before(ctx, rng, t))
    ctx.expect(ctx.login(t, a), "revoked_account")
    found = ctx.customers(rng, 4)
    t += rng.randint(20, 120) * SECOND
    ctx.expect(ctx.access(t, a, "crm.audit", "search", "crm.customers", ("identity", "contact"),
                          purpose="customer_support", ids=found), "revoked_account")
    t += rng.randint(20, 120) * SECOND
    ctx.expect(ctx.access(t, a, "crm.audit", "read", "crm.customers",
                          ("identity", "contact", "address"), purpose="customer_support",
                          ids=found[:1]), "revoked_account")


@scenario("suspended_login", "revoked_account")
def suspended_login(ctx: Context, rng: random.Random) -> None:
    """A suspended account (under investigation) tries to log in; reinstated days later."""
    t, a = ctx.slot(rng, ctx.roomiest(_ROLES), "business", 10 * MINUTE, lifecycle=True)
    ctx.suspend(a, _before(ctx, rng, t, 2 * DAY), t + rng.randint(2, 6) * DAY)
    ctx.expect(ctx.login(t, a, outcome="failure"), "revoked_account")


@scenario("transferred_old_duties", "revoked_account")
def transferred_old_duties(ctx: Context, rng: random.Random) -> None:
    """A support agent moved to marketing still opens customers' identity and address."""
    t, a = ctx.slot(rng, "support_agent", "business", 20 * MINUTE, lifecycle=True)
    ctx.transfer(a, _before(ctx, rng, t), ("marketing",), "marketing")
    ctx.login(t, a)  # a transferred account may log in: no alert
    t += rng.randint(30, 300) * SECOND
    ctx.expect(ctx.access(t, a, "crm.audit", "read", "crm.customers", ("identity", "address"),
                          purpose="customer_support", ids=ctx.customers(rng)),
               "revoked_account")


@scenario("departed_night_external", "revoked_account",
          raises=("revoked_account", "external_network"))
def departed_night_external(ctx: Context, rng: random.Random) -> None:
    """A leaver's still-valid token reads billing data at night from outside."""
    t, a = ctx.slot(rng, "billing", "night", 10 * MINUTE, lifecycle=True)
    ctx.depart(a, _before(ctx, rng, t))
    ev = ctx.access(t, a, "billing.audit", "read", "billing.invoices",
                    ("identity", "payment"), purpose="billing", ids=ctx.customers(rng, 3),
                    ip=ctx.external_ip(rng), host="unknown")
    ctx.expect(ev, "revoked_account")
    ctx.expect(ev, "external_network")


@scenario("ghost_account", "unknown_account")
def ghost_account(ctx: Context, rng: random.Random) -> None:
    """An account no directory knows searches and reads customers from the office LAN."""
    t = ctx.when(rng, "business", 10 * MINUTE)
    uid = ctx.ghost(rng)
    ip = f"10.20.{rng.randint(0, 9)}.{rng.randint(20, 219)}"
    found = ctx.customers(rng, 3)
    ctx.expect(ctx.access(t, uid, "crm.audit", "search", "crm.customers",
                          ("identity", "contact"), purpose="customer_support", ids=found, ip=ip),
               "unknown_account")
    ctx.expect(ctx.access(t + rng.randint(10, 90) * SECOND, uid, "crm.audit", "read",
                          "crm.customers", ("identity", "contact"), purpose="customer_support",
                          ids=found[:1], ip=ip), "unknown_account")


@scenario("pre_start_access", "unknown_account")
def pre_start_access(ctx: Context, rng: random.Random) -> None:
    """A new hire's account is used days before their directory record takes effect
    (its login alone raises nothing: unknown_account is about personal data)."""
    t = ctx.when(rng, "business", 10 * MINUTE)
    a = ctx.new_hire(rng, "support_agent", t + rng.randint(1, 5) * DAY)
    ctx.login(t, a)
    ctx.expect(ctx.access(t + rng.randint(30, 300) * SECOND, a, "crm.audit", "read",
                          "crm.customers", ("identity", "contact"), purpose="customer_support",
                          ids=ctx.customers(rng)), "unknown_account")


@scenario("vendor_token", "unknown_account")
def vendor_token(ctx: Context, rng: random.Random) -> None:
    """An outsourcer's API token, never registered, claims the dba role and downloads."""
    t = ctx.when(rng, "business", 10 * MINUTE)
    uid = ctx.ghost(rng, "vendor")
    ctx.expect(ctx.access(t, uid, "crm.audit", "download", "crm.customers",
                          ("identity", "contact"), purpose="maintenance",
                          ids=ctx.customers(rng, rng.randint(10, 40)),
                          dest={"kind": "internal"}, roles=["dba"],
                          ip=f"10.26.{rng.randint(0, 3)}.{rng.randint(20, 219)}"),
               "unknown_account")


@scenario("ghost_at_night", "unknown_account")
def ghost_at_night(ctx: Context, rng: random.Random) -> None:
    """An unknown account reads order history at 2 a.m. (no off_hours_access on top)."""
    t = ctx.when(rng, "night", 10 * MINUTE)
    uid = ctx.ghost(rng)
    ctx.expect(ctx.access(t, uid, "crm.audit", "read", "crm.orders", ("purchase",),
                          purpose="customer_support", ids=ctx.customers(rng, 2),
                          ip=f"10.24.{rng.randint(0, 9)}.{rng.randint(20, 219)}"),
               "unknown_account")
