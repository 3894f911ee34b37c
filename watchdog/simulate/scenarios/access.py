"""Who may touch what, for what, when and from where: category_not_permitted,
purpose_violation, off_hours_access, external_network."""

from __future__ import annotations

import random

from watchdog.simulate.clock import MINUTE, SECOND
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import scenario


@scenario("support_reads_payment", "category_not_permitted")
def support_reads_payment(ctx: Context, rng: random.Random) -> None:
    """A support agent opens a customer's stored card details (identity is fine, payment not)."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "billing.audit", "read", "billing.payment_methods",
                          ("identity", "payment"), purpose="customer_support",
                          ids=ctx.customers(rng)), "category_not_permitted")


@scenario("engineer_reads_my_number", "category_not_permitted")
def engineer_reads_my_number(ctx: Context, rng: random.Random) -> None:
    """An engineer "debugging payroll" reads employees' My Number."""
    t, a = ctx.slot(rng, "engineer", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "hr.audit", "read", "hr.payroll", ("my_number",),
                          purpose="troubleshooting", ids=ctx.employee(rng, 2)),
               "category_not_permitted")


@scenario("stale_role_claim", "category_not_permitted")
def stale_role_claim(ctx: Context, rng: random.Random) -> None:
    """The billing app still says "billing" for a support agent: the directory's roles win."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "billing.audit", "read", "billing.payment_methods",
                          ("payment",), purpose="billing", ids=ctx.customers(rng),
                          roles=["billing"]), "category_not_permitted")


@scenario("marketer_reads_addresses", "category_not_permitted")
def marketer_reads_addresses(ctx: Context, rng: random.Random) -> None:
    """A marketer pulls home addresses from the CRM for a flyer campaign."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "crm.audit", "read", "crm.customers", ("address",),
                          purpose="marketing", ids=ctx.customers(rng, 5)),
               "category_not_permitted")


@scenario("missing_purpose", "purpose_violation")
def missing_purpose(ctx: Context, rng: random.Random) -> None:
    """A support tool's new screen logs reads without any purpose."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "crm.audit", "read", "crm.customers", ("identity", "contact"),
                          purpose=None, ids=ctx.customers(rng)), "purpose_violation")


@scenario("support_data_for_marketing", "purpose_violation")
def support_data_for_marketing(ctx: Context, rng: random.Random) -> None:
    """A support agent reads contacts "for marketing", a purpose their role does not have."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "crm.audit", "read", "crm.customers", ("contact",),
                          purpose="marketing", ids=ctx.customers(rng, 3)), "purpose_violation")


@scenario("billing_data_for_analytics", "purpose_violation")
def billing_data_for_analytics(ctx: Context, rng: random.Random) -> None:
    """A billing clerk analyses purchase and payment data "for analytics"."""
    t, a = ctx.slot(rng, "billing", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "billing.audit", "search", "billing.invoices",
                          ("purchase", "payment"), purpose="analytics",
                          ids=ctx.customers(rng, 6)), "purpose_violation")


@scenario("late_night_support", "off_hours_access")
def late_night_support(ctx: Context, rng: random.Random) -> None:
    """A support agent logs in at night and reads a customer (the login itself is fine)."""
    t, a = ctx.slot(rng, "support_agent", "night", 15 * MINUTE)
    ctx.login(t, a)
    t += rng.randint(30, 300) * SECOND
    ctx.expect(ctx.access(t, a, "crm.audit", "read", "crm.customers", ("identity", "contact"),
                          purpose="customer_support", ids=ctx.customers(rng)),
               "off_hours_access")
    ctx.login(t + rng.randint(60, 400) * SECOND, a, action="logout")


@scenario("weekend_billing", "off_hours_access")
def weekend_billing(ctx: Context, rng: random.Random) -> None:
    """A billing clerk catches up on invoices at the weekend."""
    t, a = ctx.slot(rng, "billing", "weekend", 10 * MINUTE)
    ctx.expect(ctx.access(t, a, "billing.audit", "read", "billing.invoices",
                          ("identity", "purchase"), purpose="billing", ids=ctx.customers(rng)),
               "off_hours_access")


@scenario("early_bird", "off_hours_access")
def early_bird(ctx: Context, rng: random.Random) -> None:
    """A support agent starts before business hours open."""
    t, a = ctx.slot(rng, "support_agent", "before_open", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "crm.audit", "update", "crm.tickets", ("identity", "contact"),
                          purpose="customer_support", ids=ctx.customers(rng)),
               "off_hours_access")


@scenario("at_closing_time", "off_hours_access")
def at_closing_time(ctx: Context, rng: random.Random) -> None:
    """A read at exactly the closing minute: business hours are [start, end)."""
    t, a = ctx.slot(rng, "marketing", "closing", 0)
    ctx.expect(ctx.access(t, a, "mkt.audit", "read", "mkt.profiles",
                          ("contact", "preferences"), purpose="marketing",
                          ids=ctx.customers(rng), exact=True), "off_hours_access")


@scenario("home_without_vpn", "external_network")
def home_without_vpn(ctx: Context, rng: random.Random) -> None:
    """A support agent works from home without the VPN (login from outside is no alert)."""
    t, a = ctx.slot(rng, "support_agent", "business", 15 * MINUTE)
    ip = ctx.external_ip(rng)
    ctx.login(t, a, ip=ip)
    ctx.expect(ctx.access(t + rng.randint(30, 300) * SECOND, a, "crm.audit", "read",
                          "crm.customers", ("identity", "contact"), purpose="customer_support",
                          ids=ctx.customers(rng), ip=ip, host="home-pc"), "external_network")


@scenario("hotel_wifi", "external_network")
def hotel_wifi(ctx: Context, rng: random.Random) -> None:
    """A marketer on a business trip updates preferences over hotel Wi-Fi."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "mkt.audit", "update", "mkt.preferences", ("preferences",),
                          purpose="marketing", ids=ctx.customers(rng),
                          ip=ctx.external_ip(rng)), "external_network")
