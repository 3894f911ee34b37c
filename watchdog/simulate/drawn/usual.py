"""An account's usual behaviour, from the same task tables its clean traffic is drawn from,
and the accesses an insider of each role makes (a read, an export, each of a kind the role
does every day and the policy allows it).

A drawn case's intensity is a multiple of these usual rates: ``4x`` means four times the
customers this account reads in an hour (or exports in a day) on an ordinary working day,
given its role and its own workload (``Account.volume``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from watchdog.simulate.behaviour import ROLE_TASKS, Step
from watchdog.simulate.render import EXPORT_ACTIONS

# hours an ordinary working session lasts (``sessions``: 8.8 h on average, minus lunch)
WORKING_HOURS = 8.5


@dataclass(frozen=True, slots=True)
class Usual:
    """An account's expected activity on an ordinary working day."""

    events_per_day: float
    subjects_per_hour: float
    exports_per_day: float
    exported_per_day: float  # subjects taken out per day


def _subjects(step: Step) -> float:
    lo, hi = step.n
    return {"new": 1.0, "employee": 1.0, "several": (lo + hi) / 2,
            "employees": (lo + hi) / 2}.get(step.subjects, 0.0)


def _exported(step: Step) -> float:
    if step.action not in EXPORT_ACTIONS:
        return 0.0
    lo, hi = step.n
    return (lo + hi) / 2 if step.subjects == "count" else _subjects(step)


def usual(role: str, volume: float, events_per_account_per_day: float) -> Usual:
    """Expected rates of an account with ``role`` and workload ``volume`` (as ``sessions``
    draws its working day: ``epd * volume - 2`` accesses in tasks, plus log-in and out)."""
    tasks = ROLE_TASKS[role]
    total = sum(t.weight for t in tasks)

    def per_task(f: Callable[[Step], float]) -> float:
        return sum(t.weight * sum(f(s) for s in t.steps) for t in tasks) / total

    steps = per_task(lambda _s: 1.0)
    n_tasks = max(1.0, (events_per_account_per_day * volume - 2) / max(steps, 1.0))
    subjects = n_tasks * per_task(_subjects)
    return Usual(
        events_per_day=n_tasks * steps + 2,
        subjects_per_hour=subjects / WORKING_HOURS,
        exports_per_day=n_tasks * per_task(lambda s: float(s.action in EXPORT_ACTIONS)),
        exported_per_day=n_tasks * per_task(_exported),
    )


@dataclass(frozen=True, slots=True)
class Access:
    """One kind of access an insider repeats: each names a few customers."""

    dataset: str
    action: str
    resource: str
    categories: tuple[str, ...]
    purpose: str
    dest: dict[str, Any] | None = None


_SHARE: dict[str, Any] = {"kind": "internal", "domain": "files.hikari.example"}

# What an insider of each role reads: its most common lookup of customers (no dwh.*
# resources: those feed the re-identification rule's window).
READS: dict[str, Access] = {
    "support_agent": Access("crm.audit", "read", "crm.customers",
                            ("identity", "contact", "address"), "customer_support"),
    "billing": Access("billing.audit", "read", "billing.invoices",
                      ("identity", "contact", "purchase", "payment"), "billing"),
    "marketing": Access("mkt.audit", "read", "mkt.profiles", ("contact", "preferences"),
                        "marketing"),
    "engineer": Access("crm.audit", "read", "crm.devices", ("device",), "troubleshooting"),
}
# What it takes out, a little at a time: the role's own lawful exports to the internal share.
EXPORTS: dict[str, Access] = {
    "support_agent": Access("crm.audit", "download", "crm.tickets", ("identity", "contact"),
                            "customer_support", _SHARE),
    "billing": Access("billing.audit", "export", "billing.invoices",
                      ("identity", "purchase", "payment"), "billing", _SHARE),
}
