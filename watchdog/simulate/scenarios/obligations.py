"""Obligations with a deadline (contract 1.1): account_not_revoked, erasure_overdue; with
the near misses beside each (issue 11): disabled one minute before the deadline, an HR
departure reverted in time, a delete one hour before the erasure deadline, a request cleared
in time; and the cases that look kept but are not: a delete *before* the request, a failed
delete.

The alerts these raise have no access event: truth gives the record that started the
obligation (``directory/<user_id>/<effective>``, ``subjects/<subject>/<effective>``), the
account or resource, and the deadline.
"""

from __future__ import annotations

import random

from watchdog.simulate.clock import DAY, HOUR, MINUTE, iso
from watchdog.simulate.directory import Change
from watchdog.simulate.ids import subject_id
from watchdog.simulate.org import Account
from watchdog.simulate.scenarios.context import Context, NoRoom
from watchdog.simulate.scenarios.erasures import delete
from watchdog.simulate.scenarios.registry import benign, scenario

_ROLES = ("support_agent", "billing", "marketing", "engineer")


def _revocation(ctx: Context) -> int:
    return int(ctx.thresholds["revocation_minutes"] * MINUTE)


def _leaver(ctx: Context, rng: random.Random,
            roles: tuple[str, ...] = _ROLES) -> tuple[int, Account]:
    """An account and a time (the hour before a working day) to change its state at."""
    t, a = ctx.slot(rng, ctx.roomiest(roles), "before_open", 10 * MINUTE, lifecycle=True)
    return t - t % MINUTE, a


def _ref(a: Account, at: int) -> str:
    return f"directory/{a.user_id}/{iso(at)}"  # the directory writes ``effective`` so


@scenario("leaver_left_enabled", "account_not_revoked")
def leaver_left_enabled(ctx: Context, rng: random.Random) -> None:
    """HR records a departure; the identity provider never disables the account."""
    at, a = _leaver(ctx, rng)
    ctx.depart(a, at)
    ctx.idp.follow[(a.user_id, at)] = None
    ctx.expect_obligation(_ref(a, at), "account_not_revoked", a.user_id,
                          at + _revocation(ctx))


@scenario("suspension_disabled_late", "account_not_revoked")
def suspension_disabled_late(ctx: Context, rng: random.Random) -> None:
    """A suspension the identity provider applies a day late (the deadline passed first)."""
    at, a = _leaver(ctx, rng)
    ctx.suspend(a, at)
    ctx.idp.follow[(a.user_id, at)] = _revocation(ctx) + rng.randint(2, 30) * HOUR
    ctx.expect_obligation(_ref(a, at), "account_not_revoked", a.user_id,
                          at + _revocation(ctx))


@scenario("transfer_keeps_old_role", "account_not_revoked")
def transfer_keeps_old_role(ctx: Context, rng: random.Random) -> None:
    """A transfer to marketing; the identity provider keeps the old role's group."""
    at, a = _leaver(ctx, rng, ("support_agent", "billing", "engineer"))
    ctx.transfer(a, at, ("marketing",), "marketing")
    ctx.idp.follow[(a.user_id, at)] = None
    ctx.expect_obligation(_ref(a, at), "account_not_revoked", a.user_id,
                          at + _revocation(ctx))


@benign("disabled_minute_before_deadline")
def disabled_minute_before_deadline(ctx: Context, rng: random.Random) -> None:
    """A departure the identity provider applies one minute before the deadline."""
    at, a = _leaver(ctx, rng)
    ctx.depart(a, at)
    ctx.idp.follow[(a.user_id, at)] = _revocation(ctx) - MINUTE
    ctx.near_miss(_ref(a, at), "account_not_revoked", a.user_id, at + _revocation(ctx))


@benign("departure_reverted")
def departure_reverted(ctx: Context, rng: random.Random) -> None:
    """HR records a departure by mistake and reverts it within the deadline; the identity
    provider never acted on either."""
    at, a = _leaver(ctx, rng)
    ctx.depart(a, at)
    back = at + rng.randint(5, _revocation(ctx) // MINUTE - 5) * MINUTE
    ctx.directory.add(a.user_id, Change(back, "active", a.roles, a.department, a.manager))
    ctx.idp.follow[(a.user_id, at)] = None
    ctx.idp.follow[(a.user_id, back)] = None
    ctx.near_miss(_ref(a, at), "account_not_revoked", a.user_id, at + _revocation(ctx))


# -- erasure -----------------------------------------------------------------------------------

def _request(ctx: Context, rng: random.Random, resources: tuple[str, ...] | None,
             before: int = 0) -> tuple[int, str, int, int]:
    """An erasure request whose whole window (and ``before`` ahead of it) lies in the
    period: (subject index, subject id, effective, deadline)."""
    span = int(ctx.thresholds["erasure_days"] * DAY)
    lo, hi = ctx.cal.start + 2 * HOUR + before, ctx.cal.end - span - 2 * HOUR
    if lo > hi:
        raise NoRoom("the period is shorter than the erasure deadline")
    at = rng.randint(lo, hi)
    at -= at % MINUTE
    s = ctx.register.take(rng)
    ctx.register.add(s, "erasure_requested", at, resources=resources)
    return s, subject_id(s), at, at + span


def _subject_ref(sid: str, s: int, at: int) -> str:
    return f"subjects/{sid}/{iso(at, utc=s % 3 == 0)}"  # as the register writes it


@scenario("erasure_one_resource_left", "erasure_overdue")
def erasure_one_resource_left(ctx: Context, rng: random.Random) -> None:
    """Customer records deleted in time; the order history never is."""
    s, sid, at, deadline = _request(ctx, rng, ("crm.customers", "crm.orders"))
    delete(ctx, at + rng.randint(1, 48) * HOUR, sid, "crm.customers")
    ctx.overdue_erasures.add((s, at))
    ctx.expect_obligation(_subject_ref(sid, s, at), "erasure_overdue", "crm.orders", deadline)


@scenario("erasure_delete_failed", "erasure_overdue")
def erasure_delete_failed(ctx: Context, rng: random.Random) -> None:
    """The only delete of the invoices fails (a lock timeout) and nobody retries."""
    s, sid, at, deadline = _request(ctx, rng, ("billing.invoices",))
    svc = ctx.services["billing.audit"]
    ctx.access(at + rng.randint(1, 72) * HOUR, svc, "billing.audit", "delete",
               "billing.invoices", ("identity", "payment"), purpose="billing", ids=[sid],
               outcome="failure")
    ctx.overdue_erasures.add((s, at))
    ctx.expect_obligation(_subject_ref(sid, s, at), "erasure_overdue", "billing.invoices",
                          deadline)


@scenario("erasure_deleted_before_request", "erasure_overdue")
def erasure_deleted_before_request(ctx: Context, rng: random.Random) -> None:
    """A delete an hour *before* the request (a routine clean-up) does not fulfil it; the
    request names no resource."""
    s, sid, at, deadline = _request(ctx, rng, None, before=2 * HOUR)
    delete(ctx, at - HOUR, sid, "crm.customers")
    ctx.overdue_erasures.add((s, at))
    ctx.expect_obligation(_subject_ref(sid, s, at), "erasure_overdue", "subject-register",
                          deadline)


@benign("erasure_deleted_hour_before_deadline")
def erasure_deleted_hour_before_deadline(ctx: Context, rng: random.Random) -> None:
    """Both resources delete; the last an hour before the deadline."""
    s, sid, at, deadline = _request(ctx, rng, ("crm.customers", "billing.invoices"))
    delete(ctx, at + rng.randint(1, 24) * HOUR, sid, "crm.customers")
    delete(ctx, deadline - HOUR, sid, "billing.invoices")
    ctx.near_miss(_subject_ref(sid, s, at), "erasure_overdue", "billing.invoices", deadline)


@benign("erasure_cleared_in_time")
def erasure_cleared_in_time(ctx: Context, rng: random.Random) -> None:
    """A request withdrawn (``cleared``) days before its deadline; nothing deleted."""
    s, sid, at, deadline = _request(ctx, rng, ("crm.orders",))
    ctx.register.add(s, "cleared", at + rng.randint(1, int(ctx.thresholds["erasure_days"]) - 1)
                     * DAY)
    ctx.overdue_erasures.add((s, at))  # nothing to fulfil: it was withdrawn
    ctx.near_miss(_subject_ref(sid, s, at), "erasure_overdue", "crm.orders", deadline)

