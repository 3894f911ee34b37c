"""Contract 1.1 rules on single events: password_expired, consent_missing,
authority_disclosure; with their near misses (issue 11): a password 89 days old, consent
withdrawn for another purpose, consent granted again."""

from __future__ import annotations

import random
from typing import Any

from watchdog.simulate import catalog as C
from watchdog.simulate.clock import DAY, HOUR, MINUTE
from watchdog.simulate.org import Account
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import benign, scenario


def _max_age(ctx: Context) -> int:
    return int(ctx.thresholds["password_max_age_days"] * DAY)


@scenario("stale_password_login", "password_expired")
def stale_password_login(ctx: Context, rng: random.Random) -> None:
    """An account's password passes its maximum age minutes before the account logs in;
    it is changed a day or so later."""
    t, a = ctx.slot(rng, "support_agent", "business", 60 * MINUTE)
    login = t + 30 * MINUTE
    changed = login - _max_age(ctx) - rng.randint(1, 20) * MINUTE
    later = login + rng.randint(2, 40) * HOUR
    ctx.idp.passwords[a.user_id] = [(ctx.cal.start - 2 * DAY, changed), (later, later)]
    ctx.expect(ctx.login(login, a), "password_expired")


@scenario("stale_password_after_failures", "password_expired")
def stale_password_after_failures(ctx: Context, rng: random.Random) -> None:
    """Two failed logins (they do not count) and then a successful one, with a password
    one second short of ten minutes past its maximum age."""
    t, a = ctx.slot(rng, "billing", "business", 60 * MINUTE, quiet=True)
    login = t + 30 * MINUTE
    changed = login - _max_age(ctx) - 10 * MINUTE + 1000
    ctx.idp.passwords[a.user_id] = [(ctx.cal.start - 2 * DAY, changed),
                                    (login + DAY, login + DAY)]
    ctx.login(login - 3 * MINUTE, a, outcome="failure")
    ctx.login(login - 2 * MINUTE, a, outcome="failure")
    ctx.expect(ctx.login(login, a), "password_expired")


@benign("password_89_days_old")
def password_89_days_old(ctx: Context, rng: random.Random) -> None:
    """A login with a password 89 days old; it is changed before it turns 90."""
    t, a = ctx.slot(rng, "marketing", "business", 60 * MINUTE)
    login = t + 30 * MINUTE
    changed = login - _max_age(ctx) + DAY
    later = login + rng.randint(1, 20) * HOUR
    ctx.idp.passwords[a.user_id] = [(ctx.cal.start - 2 * DAY, changed), (later, later)]
    ev = ctx.login(login, a)
    ctx.near_miss(ev["event"]["id"], "password_expired", a.user_id, login)


def _cohort(ctx: Context, rng: random.Random, subject: str, t: int,
            a: Account) -> dict[str, Any]:
    ids = ctx.customers(rng, rng.randint(2, 8))
    ids.insert(rng.randint(0, len(ids)), subject)
    return ctx.access(t, a, "dwh.audit", "read", "bi.cohorts", ("purchase",),
                      purpose="analytics", ids=ids)


@scenario("analytics_after_withdrawal", "consent_missing")
def analytics_after_withdrawal(ctx: Context, rng: random.Random) -> None:
    """A customer withdrew consent to analytics; an analyst's cohort still includes them."""
    t, a = ctx.slot(rng, "analyst", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("consent_granted", t - 400 * DAY, ("analytics",)),
                       ("consent_withdrawn", t - rng.randint(1, 60) * DAY, ("analytics",)))
    ctx.expect(_cohort(ctx, rng, s, t, a), "consent_missing")


@scenario("analytics_after_withdrawing_all", "consent_missing")
def analytics_after_withdrawing_all(ctx: Context, rng: random.Random) -> None:
    """A customer withdrew every consent hours ago; analytics goes on."""
    t, a = ctx.slot(rng, "analyst", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("consent_withdrawn", t - rng.randint(1, 30) * HOUR, None))
    ctx.expect(_cohort(ctx, rng, s, t, a), "consent_missing")


@benign("consent_withdrawn_for_marketing_only")
def consent_withdrawn_for_marketing_only(ctx: Context, rng: random.Random) -> None:
    """Consent withdrawn for marketing; analytics of the same customer is still lawful."""
    t, a = ctx.slot(rng, "analyst", "business", 5 * MINUTE)
    s = ctx.registered(rng, ("consent_withdrawn", t - rng.randint(1, 60) * DAY, ("marketing",)))
    ev = _cohort(ctx, rng, s, t, a)
    ctx.near_miss(ev["event"]["id"], "consent_missing", a.user_id, t)


@benign("consent_granted_again")
def consent_granted_again(ctx: Context, rng: random.Random) -> None:
    """Consent to analytics withdrawn, then granted again: the latest record wins."""
    t, a = ctx.slot(rng, "analyst", "business", 5 * MINUTE)
    gone = t - rng.randint(10, 90) * DAY
    s = ctx.registered(rng, ("consent_withdrawn", gone, ("analytics",)),
                       ("consent_granted", gone + rng.randint(1, 9) * DAY, ("analytics",)))
    ev = _cohort(ctx, rng, s, t, a)
    ctx.near_miss(ev["event"]["id"], "consent_missing", a.user_id, t)


@scenario("disclosure_to_authority", "authority_disclosure")
def disclosure_to_authority(ctx: Context, rng: random.Random) -> None:
    """Security hands a customer's identity to a prosecutor under a written request: lawful,
    recorded (the policy promises to tell the customer)."""
    t, a = ctx.slot(rng, "security_analyst", "business", 5 * MINUTE, quiet=True)
    org, country, law = rng.choice(C.AUTHORITIES)
    ctx.expect(ctx.access(t, a, "crm.audit", "transfer", "crm.customers", ("identity",),
                          purpose="security", ids=ctx.customers(rng, rng.randint(1, 2)),
                          dest={"kind": "authority", "organization": org, "country": country},
                          legal_basis=law), "authority_disclosure")


@scenario("authority_without_legal_basis", "unapproved_third_party")
def authority_without_legal_basis(ctx: Context, rng: random.Random) -> None:
    """The same hand-over with no legal basis recorded: judged as any third party."""
    t, a = ctx.slot(rng, "security_analyst", "business", 5 * MINUTE, quiet=True)
    org, country, _law = rng.choice(C.AUTHORITIES)
    ctx.expect(ctx.access(t, a, "crm.audit", "transfer", "crm.customers", ("identity",),
                          purpose="security", ids=ctx.customers(rng),
                          dest={"kind": "authority", "organization": org, "country": country}),
               "unapproved_third_party")
