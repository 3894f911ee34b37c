"""Attacks on accounts: brute_force (failed logins are not personal-data access, so neither
unknown_account nor external_network applies to them)."""

from __future__ import annotations

import random
from typing import Any

from watchdog.simulate.clock import MINUTE, SECOND
from watchdog.simulate.org import Account
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import scenario


def _burst(ctx: Context, rng: random.Random, who: Account | str, t: int,
           ip: str) -> tuple[dict[str, Any], int]:
    """Exactly ``failed_logins`` failures within a few minutes; returns the last and the time."""
    n = int(ctx.thresholds["failed_logins"])
    ev: dict[str, Any] = {}
    for _ in range(n):
        ev = ctx.login(t, who, ip=ip, outcome="failure")
        t += rng.randint(3, 25) * SECOND
    return ev, t


@scenario("password_guessing", "brute_force")
def password_guessing(ctx: Context, rng: random.Random) -> None:
    """Someone outside guesses an employee's password, ten times in a few minutes."""
    t, a = ctx.slot(rng, rng.choice(("support_agent", "billing", "engineer")),
                    rng.choice(("business", "night")), 10 * MINUTE, quiet=True)
    last, _ = _burst(ctx, rng, a, t, ctx.external_ip(rng))
    ctx.expect(last, "brute_force")


@scenario("guessed_then_in", "brute_force")
def guessed_then_in(ctx: Context, rng: random.Random) -> None:
    """Ten failures from the office network, then the right password."""
    t, a = ctx.slot(rng, "marketing", "business", 10 * MINUTE, quiet=True)
    last, t = _burst(ctx, rng, a, t, a.ip)
    ctx.expect(last, "brute_force")
    ctx.login(t, a)


@scenario("admin_guessing", "brute_force")
def admin_guessing(ctx: Context, rng: random.Random) -> None:
    """Ten failed logins as "admin", an account that does not exist."""
    t = ctx.when(rng, "any", 10 * MINUTE)
    last, _ = _burst(ctx, rng, rng.choice(("admin", "administrator", "root")), t,
                     ctx.external_ip(rng))
    ctx.expect(last, "brute_force")
