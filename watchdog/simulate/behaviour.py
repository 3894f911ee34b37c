"""What each role does at work: weighted tasks, each a short script of accesses.

A task touches one customer (or a handful), in the systems and for the purpose its role
allows, and never more than the policy lets it take out. ``sessions`` draws tasks through
a working day; ``background`` runs the batch jobs. Every category and purpose below is
one the role's policy entry allows (``tests/simulate`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from watchdog.simulate import catalog as C


@dataclass(frozen=True, slots=True)
class Step:
    dataset: str
    action: str
    resource: str
    categories: tuple[str, ...] = ()
    purpose: str | None = None
    # none | new (one customer) | same (the task's customer) | several (customers)
    # | employee | employees | count (subject_count only)
    subjects: str = "none"
    n: tuple[int, int] = (1, 1)
    dest: str | None = None  # key of DESTINATIONS
    anonymized: bool = False
    max_age_days: int = 0  # > 0: collected_at up to this many days back
    gap: tuple[int, int] = (4, 75)  # seconds after the previous access


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    weight: float
    steps: tuple[Step, ...]


def _mail(domain: str, org: str | None = None, country: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": "email", "domain": domain}
    if org:
        d["organization"] = org
    if country:
        d["country"] = country
    return d


def _proc(name: str, kind: str = "third_party", country: bool = True) -> dict[str, Any]:
    p = C.PROCESSOR_BY_NAME[name]
    d: dict[str, Any] = {"kind": kind, "domain": p.domain, "organization": p.name}
    if country:
        d["country"] = p.country
    return d


# Lawful destinations only.
DESTINATIONS: dict[str, tuple[dict[str, Any], ...]] = {
    "share": ({"kind": "internal", "domain": "files.hikari.example"}, {"kind": "internal"}),
    "print": ({"kind": "print"},),
    "colleague": (_mail("hikari.example"), _mail("cs.hikari.example"),
                  _mail("hikari-group.example")),
    "mailcloud_mail": (_mail("mailcloud.example", "MailCloud", "US"),
                       _mail("mailcloud.example", "MailCloud")),
    "mailcloud_storage": (_proc("MailCloud", "cloud_storage"),),
    "payquick": (_proc("PayQuick"), _proc("PayQuick", country=False)),
    "payquick_mail": (_mail("payquick.example", "PayQuick", "JP"),),
    "hoshi": (_proc("Hoshi Logistics"),),
    "skyline": (_proc("Skyline Analytics"),),
}

S, P = Step, Task
CS, BIL, MKT, AN, TRB, MNT, HRA, SEC = (
    "customer_support", "billing", "marketing", "analytics", "troubleshooting",
    "maintenance", "employment_administration", "security")

ENGINEERING: tuple[Task, ...] = (
    P("debug_logs", 40, (S("dwh.audit", "read", "dwh.app_logs", ("device",), TRB, "several",
                           (1, 3), max_age_days=30),)),
    P("crash_report", 25, (S("crm.audit", "read", "crm.devices", ("device",), TRB, "new"),)),
    P("trace", 10, (S("dwh.audit", "search", "dwh.app_logs", ("device", "behavior"), TRB,
                      "several", (1, 5), max_age_days=30),
                    S("dwh.audit", "read", "dwh.app_logs", ("device",), TRB, "same",
                      max_age_days=30))),
    P("config_change", 25, (S("crm.audit", "update", "crm.config"),
                            S("crm.audit", "read", "crm.config"))),
)

ROLE_TASKS: dict[str, tuple[Task, ...]] = {
    "support_agent": (
        P("ticket", 40, (
            S("crm.audit", "search", "crm.customers", ("identity", "contact"), CS, "several",
              (1, 8)),
            S("crm.audit", "read", "crm.customers", ("identity", "contact", "address"), CS,
              "same"),
            S("crm.audit", "read", "crm.orders", ("purchase",), CS, "same"),
            S("crm.audit", "update", "crm.tickets", ("identity", "contact"), CS, "same",
              gap=(30, 400)))),
        P("lookup", 25, (S("crm.audit", "read", "crm.customers", ("identity", "contact"), CS,
                           "new"),
                         S("crm.audit", "read", "crm.orders", ("purchase",), CS, "same"))),
        P("address_change", 8, (
            S("crm.audit", "read", "crm.customers", ("identity", "contact", "address"), CS,
              "new"),
            S("crm.audit", "update", "crm.customers", ("address",), CS, "same"))),
        P("device_help", 6, (S("crm.audit", "read", "crm.devices", ("device",), CS, "new"),)),
        P("new_ticket", 6, (S("crm.audit", "create", "crm.tickets", ("identity", "contact"), CS,
                              "new"),)),
        P("reply_via_mailcloud", 5, (
            S("crm.audit", "read", "crm.customers", ("contact",), CS, "new"),
            S("crm.audit", "email", "crm.tickets", ("contact",), CS, "same",
              dest="mailcloud_mail"))),
        P("escalate", 5, (S("crm.audit", "email", "crm.tickets", ("identity", "contact"), CS,
                            "new", dest="colleague"),)),
        P("ticket_report", 2, (S("crm.audit", "download", "crm.tickets", ("identity", "contact"),
                                 CS, "several", (5, 40), dest="share"),)),
        P("print_order", 2, (S("crm.audit", "print", "crm.orders",
                               ("identity", "address", "purchase"), CS, "new", dest="print"),)),
    ),
    "billing": (
        P("invoice_query", 40, (
            S("billing.audit", "search", "billing.invoices", ("identity", "purchase"), BIL,
              "several", (1, 5)),
            S("billing.audit", "read", "billing.invoices",
              ("identity", "contact", "purchase", "payment"), BIL, "same"))),
        P("refund", 15, (
            S("billing.audit", "read", "billing.payment_methods", ("payment",), BIL, "new"),
            S("billing.audit", "update", "billing.refunds", ("payment", "purchase"), BIL, "same",
              gap=(20, 300)))),
        P("address_fix", 8, (S("billing.audit", "update", "billing.invoices", ("address",), BIL,
                               "new"),)),
        P("payquick_settlement", 6, (
            S("billing.audit", "transfer", "billing.charges", ("identity", "contact", "payment"),
              BIL, "several", (1, 20), dest="payquick"),)),
        P("payquick_dispute", 4, (S("billing.audit", "email", "billing.disputes",
                                    ("identity", "payment"), BIL, "new",
                                    dest="payquick_mail"),)),
        P("monthly_report", 3, (S("billing.audit", "export", "billing.invoices",
                                  ("identity", "purchase", "payment"), BIL, "count", (50, 300),
                                  dest="share"),)),
        P("print_invoice", 4, (S("billing.audit", "print", "billing.invoices",
                                 ("identity", "address", "purchase"), BIL, "new",
                                 dest="print"),)),
        P("ask_colleague", 5, (S("billing.audit", "email", "billing.invoices",
                                 ("identity", "contact"), BIL, "new", dest="colleague"),)),
    ),
    "marketing": (
        P("segment", 25, (S("mkt.audit", "search", "mkt.segments", ("preferences", "behavior"),
                            MKT, "count", (500, 20000), max_age_days=300),)),
        P("profile", 30, (S("mkt.audit", "read", "mkt.profiles", ("contact", "preferences"), MKT,
                            "new"),
                          S("mkt.audit", "update", "mkt.preferences", ("preferences",), MKT,
                            "same"))),
        P("behaviour_review", 15, (S("mkt.audit", "read", "mkt.segments",
                                     ("behavior", "purchase"), MKT, "several", (2, 10),
                                     max_age_days=300),)),
        P("campaign_upload", 4, (S("mkt.audit", "export", "mkt.campaign_audience",
                                   ("contact", "preferences"), MKT, "count", (100, 300),
                                   dest="mailcloud_storage"),)),
        P("share_list", 6, (S("mkt.audit", "email", "mkt.campaigns", ("contact",), MKT,
                              "several", (1, 3), dest="colleague"),)),
        P("campaign_edit", 20, (S("mkt.audit", "update", "mkt.campaigns"),
                                S("mkt.audit", "read", "mkt.campaigns"))),
    ),
    "analyst": (
        P("events_anon", 35, (
            S("dwh.audit", "search", "dwh.events_anon", ("behavior", "device"), AN, "count",
              (10_000, 200_000), anonymized=True, max_age_days=150),
            S("dwh.audit", "read", "dwh.events_anon", ("behavior", "device"), AN, "count",
              (1000, 50_000), anonymized=True, max_age_days=150, gap=(30, 600)))),
        P("sales_anon", 25, (S("dwh.audit", "read", "dwh.sales_anon", ("purchase",), AN, "count",
                               (5000, 100_000), anonymized=True, max_age_days=700),)),
        P("geo_anon", 10, (S("dwh.audit", "read", "dwh.geo_anon", ("location",), AN, "count",
                             (1000, 30_000), anonymized=True, max_age_days=80),)),
        P("cohort", 20, (S("dwh.audit", "read", "bi.cohorts", ("purchase", "behavior"), AN,
                           "several", (1, 20), max_age_days=300),)),
        P("summary_export", 3, (S("dwh.audit", "export", "dwh.sales_anon", ("purchase",), AN,
                                  "count", (50, 300), anonymized=True, dest="share"),)),
        P("dashboard", 7, (S("dwh.audit", "read", "bi.dashboards"),)),
    ),
    "engineer": ENGINEERING,
    "sre": ENGINEERING,
    "dba": (
        P("crm_maintenance", 40, (S("crm.audit", "read", "crm.customers",
                                    ("identity", "contact", "address"), MNT, "count",
                                    (1000, 50_000)),)),
        P("billing_maintenance", 20, (S("billing.audit", "read", "billing.invoices",
                                        ("identity", "payment", "purchase"), MNT, "count",
                                        (1000, 50_000)),)),
        P("dwh_maintenance", 20, (S("dwh.audit", "read", "dwh.orders", ("purchase", "behavior"),
                                    MNT, "count", (1000, 80_000), max_age_days=300),)),
        P("data_fix", 15, (S("crm.audit", "read", "crm.customers", ("identity", "contact"), MNT,
                             "new"),
                           S("crm.audit", "update", "crm.customers", ("identity", "contact"),
                             MNT, "same"))),
        P("backup", 5, (S("billing.audit", "export", "billing.invoices", ("identity", "payment"),
                          MNT, "count", (1000, 4000), dest="share"),)),
    ),
    "hr": (
        P("employee_record", 40, (S("hr.audit", "read", "hr.employees",
                                    ("identity", "contact", "address", "employment"), HRA,
                                    "employee"),)),
        P("payroll", 20, (S("hr.audit", "read", "hr.payroll", ("employment", "my_number"), HRA,
                            "employee"),)),
        P("health_check", 8, (S("hr.audit", "read", "hr.health_checks", ("health",), HRA,
                                "employee"),)),
        P("update_record", 20, (S("hr.audit", "update", "hr.employees", ("employment",), HRA,
                                  "employee"),)),
        P("ask_manager", 7, (S("hr.audit", "email", "hr.employees", ("employment",), HRA,
                               "employee", dest="colleague"),)),
        P("payroll_export", 5, (S("hr.audit", "export", "hr.payroll", ("employment",), HRA,
                                  "employees", (5, 50), dest="share"),)),
    ),
    "security_analyst": (
        P("session_review", 50, (S("idp.auth", "read", "idp.sessions", ("device", "location"),
                                   SEC, "employees", (1, 5), max_age_days=30),)),
        P("credential_reset", 20, (S("idp.auth", "update", "idp.credentials", ("credentials",),
                                     SEC, "employee"),)),
        P("identity_check", 30, (S("idp.auth", "read", "idp.users", ("identity",), SEC,
                                   "employee"),)),
    ),
}

# Steady batch work per dataset (service account, weighted steps); see ``background``.
BATCH: dict[str, tuple[tuple[float, Step], ...]] = {
    "crm.audit": (
        (70, S("crm.audit", "update", "crm.customers", ("identity", "contact", "address"),
               "order_fulfilment", "new")),
        (20, S("crm.audit", "create", "crm.orders", ("identity", "purchase"), CS, "new")),
        (10, S("crm.audit", "transfer", "crm.shipments", ("identity", "contact", "address"),
               "order_fulfilment", "several", (1, 10), dest="hoshi")),
    ),
    "billing.audit": (
        (100, S("billing.audit", "create", "billing.invoices", ("identity", "purchase", "payment"),
                BIL, "new")),
    ),
    "mkt.audit": (
        (60, S("mkt.audit", "update", "mkt.preferences", ("preferences",), MKT, "new")),
        (40, S("mkt.audit", "read", "mkt.profiles", ("contact", "preferences"), MKT, "new")),
    ),
    "dwh.audit": (
        (100, S("dwh.audit", "create", "dwh.events_anon", ("behavior", "device"), AN, "count",
                (500, 5000), anonymized=True, max_age_days=2)),
    ),
    "hr.audit": (
        (100, S("hr.audit", "update", "hr.employees", ("employment",), HRA, "employee")),
    ),
    "idp.auth": (),  # service logins, see ``background``
}

# Nightly and weekly hand-overs to processors: (dataset, hour JST, ISO weekdays, step)
HANDOVERS: tuple[tuple[str, int, tuple[int, ...], Step], ...] = (
    ("billing.audit", 2, (1, 2, 3, 4, 5, 6, 7),
     S("billing.audit", "transfer", "billing.settlements", ("identity", "contact", "payment"),
       BIL, "count", (3000, 8000), dest="payquick")),
    ("mkt.audit", 3, (1, 2, 3, 4, 5, 6, 7),
     S("mkt.audit", "export", "mkt.campaign_audience", ("contact", "preferences"), MKT, "count",
       (2000, 6000), dest="mailcloud_storage")),
    ("dwh.audit", 4, (7,),
     S("dwh.audit", "transfer", "dwh.sales_anon", ("behavior", "purchase"), AN, "count",
       (10_000, 15_000), anonymized=True, dest="skyline")),
)
