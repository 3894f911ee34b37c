"""What data subjects asked for or are: subject_restricted, marketing_opt_out, minor_data;
and what the data is: reidentification, retention_expired."""

from __future__ import annotations

import random
from typing import Any

from watchdog.simulate.clock import DAY, HOUR, MINUTE
from watchdog.simulate.org import Account
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import scenario


def _grace(ctx: Context) -> int:
    return int(ctx.thresholds["restriction_grace_hours"] * HOUR)


@scenario("read_after_erasure_request", "subject_restricted")
def read_after_erasure_request(ctx: Context, rng: random.Random) -> None:
    """Support keeps reading a customer days after the erasure request's grace period."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("erasure_requested", t - _grace(ctx) - rng.randint(2, 240) * HOUR))
    ctx.expect(ctx.access(t, a, "crm.audit", "read", "crm.customers", ("identity", "contact"),
                          purpose="customer_support", ids=[s]), "subject_restricted")


@scenario("invoice_after_suspension_request", "subject_restricted")
def invoice_after_suspension_request(ctx: Context, rng: random.Random) -> None:
    """Billing updates the invoice address of a customer who asked to suspend processing."""
    t, a = ctx.slot(rng, "billing", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("suspension_requested",
                             t - _grace(ctx) - rng.randint(1, 400) * HOUR))
    ctx.expect(ctx.access(t, a, "billing.audit", "update", "billing.invoices", ("address",),
                          purpose="billing", ids=[s]), "subject_restricted")


@scenario("restricted_in_campaign", "subject_restricted")
def restricted_in_campaign(ctx: Context, rng: random.Random) -> None:
    """A restricted customer's profile is read by marketing (no opt-out on record)."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("restricted", t - _grace(ctx) - rng.randint(1, 900) * HOUR))
    ctx.expect(ctx.access(t, a, "mkt.audit", "read", "mkt.profiles", ("contact", "preferences"),
                          purpose="marketing", ids=[s]), "subject_restricted")


@scenario("opted_out_in_segment", "marketing_opt_out")
def opted_out_in_segment(ctx: Context, rng: random.Random) -> None:
    """A marketing read of a few customers, one of whom opted out of marketing."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    ids = ctx.customers(rng, rng.randint(3, 8))
    ids.insert(rng.randint(0, len(ids)),
               ctx.registered(rng, ("marketing_opt_out", t - rng.randint(1, 700) * DAY)))
    ctx.expect(ctx.access(t, a, "mkt.audit", "read", "mkt.segments", ("behavior", "purchase"),
                          purpose="marketing", ids=ids), "marketing_opt_out")


@scenario("consent_withdrawn_entirely", "marketing_opt_out")
def consent_withdrawn_entirely(ctx: Context, rng: random.Random) -> None:
    """A customer granted marketing consent, then withdrew all consent; marketing goes on."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("consent_granted", t - 400 * DAY, ("marketing",)),
                       ("consent_withdrawn", t - rng.randint(1, 72) * HOUR, None))
    ctx.expect(ctx.access(t, a, "mkt.audit", "update", "mkt.preferences", ("preferences",),
                          purpose="marketing", ids=[s]), "marketing_opt_out")


@scenario("consent_withdrawn_for_marketing", "marketing_opt_out")
def consent_withdrawn_for_marketing(ctx: Context, rng: random.Random) -> None:
    """Consent withdrawn for marketing only; the customer's profile is still mined."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("consent_withdrawn", t - rng.randint(1, 90) * DAY,
                             ("marketing",)))
    ctx.expect(ctx.access(t, a, "mkt.audit", "read", "mkt.profiles", ("contact", "preferences"),
                          purpose="marketing", ids=[s]), "marketing_opt_out")


@scenario("minor_in_campaign", "minor_data")
def minor_in_campaign(ctx: Context, rng: random.Random) -> None:
    """A child's profile is used for marketing (allowed for minors: support, billing,
    fulfilment)."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("minor", t - rng.randint(30, 900) * DAY))
    ctx.expect(ctx.access(t, a, "mkt.audit", "read", "mkt.profiles", ("contact", "preferences"),
                          purpose="marketing", ids=[s]), "minor_data")


@scenario("minor_in_cohort", "minor_data")
def minor_in_cohort(ctx: Context, rng: random.Random) -> None:
    """An analyst's identified cohort includes a minor."""
    t, a = ctx.slot(rng, "analyst", "business", 5 * MINUTE)
    ids = ctx.customers(rng, rng.randint(4, 15))
    ids.insert(rng.randint(0, len(ids)),
               ctx.registered(rng, ("minor", t - rng.randint(30, 900) * DAY)))
    ctx.expect(ctx.access(t, a, "dwh.audit", "read", "bi.cohorts", ("purchase",),
                          purpose="analytics", ids=ids), "minor_data")


@scenario("minor_in_mailing_list", "minor_data")
def minor_in_mailing_list(ctx: Context, rng: random.Random) -> None:
    """A small marketing export to the internal share includes a minor."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE, quiet=True)
    ids = ctx.customers(rng, rng.randint(3, 20))
    ids.append(ctx.registered(rng, ("minor", t - rng.randint(30, 900) * DAY)))
    ctx.expect(ctx.access(t, a, "mkt.audit", "export", "mkt.campaign_audience", ("contact",),
                          purpose="marketing", ids=ids,
                          dest={"kind": "internal", "domain": "files.hikari.example"}),
               "minor_data")


def _anon(ctx: Context, a: Account, t: int, rng: random.Random,
          purpose: str) -> dict[str, Any]:
    return ctx.access(t, a, "dwh.audit", "read", "dwh.events_anon", ("behavior",),
                      purpose=purpose, count=rng.randint(20_000, 90_000), anonymized=True,
                      collected=t - rng.randint(2, 60) * DAY)


@scenario("anonymised_then_identified", "reidentification")
def anonymised_then_identified(ctx: Context, rng: random.Random) -> None:
    """An analyst reads anonymised events, then identified orders of the same family."""
    t, a = ctx.slot(rng, "analyst", "business", 60 * MINUTE, quiet=True)
    _anon(ctx, a, t, rng, "analytics")
    t += rng.randint(5, 50) * MINUTE
    ctx.expect(ctx.access(t, a, "dwh.audit", "read", "dwh.orders", ("purchase",),
                          purpose="analytics", ids=ctx.customers(rng, rng.randint(1, 3))),
               "reidentification")


@scenario("identified_then_anonymised", "reidentification")
def identified_then_anonymised(ctx: Context, rng: random.Random) -> None:
    """The reverse order: identified orders first, the anonymised table 59 minutes later."""
    t, a = ctx.slot(rng, "analyst", "business", 60 * MINUTE, quiet=True)
    ctx.access(t, a, "dwh.audit", "read", "dwh.orders", ("purchase",), purpose="analytics",
               ids=ctx.customers(rng))
    ctx.expect(_anon(ctx, a, t + 59 * MINUTE, rng, "analytics"), "reidentification")


@scenario("dba_joins_anonymised", "reidentification")
def dba_joins_anonymised(ctx: Context, rng: random.Random) -> None:
    """A DBA "checks" the anonymised table against identified orders at night."""
    t, a = ctx.slot(rng, "dba", "night", 30 * MINUTE, quiet=True)
    _anon(ctx, a, t, rng, "maintenance")
    t += rng.randint(2, 25) * MINUTE
    ctx.expect(ctx.access(t, a, "dwh.audit", "read", "dwh.orders", ("purchase", "behavior"),
                          purpose="maintenance", ids=ctx.customers(rng, 2)),
               "reidentification")


@scenario("stale_behaviour_data", "retention_expired")
def stale_behaviour_data(ctx: Context, rng: random.Random) -> None:
    """Marketing mines browsing behaviour collected well over a year ago (retention 365)."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "mkt.audit", "read", "mkt.segments",
                          ("behavior", "preferences"), purpose="marketing",
                          ids=ctx.customers(rng, 3), collected=t - rng.randint(420, 700) * DAY),
               "retention_expired")


@scenario("stale_location_data", "retention_expired")
def stale_location_data(ctx: Context, rng: random.Random) -> None:
    """An analyst reads store-visit locations kept past their 90 days."""
    t, a = ctx.slot(rng, "analyst", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "dwh.audit", "read", "bi.store_visits", ("location",),
                          purpose="analytics", ids=ctx.customers(rng, 2),
                          collected=t - rng.randint(100, 200) * DAY), "retention_expired")


@scenario("just_past_retention", "retention_expired")
def just_past_retention(ctx: Context, rng: random.Random) -> None:
    """Device data three hours past its 180 days (retention is "strictly over")."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE)
    ctx.expect(ctx.access(t, a, "crm.audit", "read", "crm.devices", ("device",),
                          purpose="customer_support", ids=ctx.customers(rng),
                          collected=t - 180 * DAY - 3 * HOUR), "retention_expired")
