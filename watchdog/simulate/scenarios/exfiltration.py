"""Personal data leaving: bulk_export, external_media, external_email,
unapproved_third_party, cross_border_transfer."""

from __future__ import annotations

import random
from typing import Any

from watchdog.simulate import catalog as C
from watchdog.simulate.clock import DAY, MINUTE
from watchdog.simulate.scenarios.context import Context
from watchdog.simulate.scenarios.registry import scenario

_USB: dict[str, Any] = {"kind": "external_media"}
_SHARE: dict[str, Any] = {"kind": "internal", "domain": "files.hikari.example"}


def _to(org: tuple[str, ...], kind: str = "third_party") -> dict[str, Any]:
    d: dict[str, Any] = {"kind": kind, "organization": org[0], "domain": org[1]}
    if len(org) > 2:
        d["country"] = org[2]
    return d


def _processor(name: str, kind: str = "third_party", country: bool = True) -> dict[str, Any]:
    p = C.PROCESSOR_BY_NAME[name]
    d: dict[str, Any] = {"kind": kind, "organization": p.name, "domain": p.domain}
    if country:
        d["country"] = p.country
    return d


@scenario("single_export", "bulk_export")
def single_export(ctx: Context, rng: random.Random) -> None:
    """A support agent exports 1,200 customers at once (per-event limit 500)."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "crm.audit", "export", "crm.customers",
                          ("identity", "contact"), purpose="customer_support",
                          count=rng.randint(1100, 1500), dest=_SHARE), "bulk_export")


@scenario("hourly_creep", "bulk_export")
def hourly_creep(ctx: Context, rng: random.Random) -> None:
    """Five downloads of 450, each under the per-event limit, cross 2,000 in an hour."""
    t, a = ctx.slot(rng, "billing", "business", 60 * MINUTE, quiet=True)
    for _ in range(5):
        ev = ctx.access(t, a, "billing.audit", "download", "billing.invoices",
                        ("identity", "purchase"), purpose="billing", count=450, dest=_SHARE)
        t += rng.randint(6, 12) * MINUTE
    ctx.expect(ev, "bulk_export")  # 5 x 450 = 2,250 > 2,000 at the fifth


@scenario("dba_night_dump", "bulk_export")
def dba_night_dump(ctx: Context, rng: random.Random) -> None:
    """A DBA (bulk_export role: no per-event limit, 20,000 an hour) dumps 25,000 at night."""
    t, a = ctx.slot(rng, "dba", "night", 10 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "crm.audit", "export", "crm.customers",
                          ("identity", "contact", "address"), purpose="maintenance",
                          count=rng.randint(24_000, 30_000), dest=_SHARE), "bulk_export")


@scenario("print_run", "bulk_export")
def print_run(ctx: Context, rng: random.Random) -> None:
    """600 invoices printed in one job."""
    t, a = ctx.slot(rng, "billing", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "billing.audit", "print", "billing.invoices",
                          ("identity", "address", "purchase"), purpose="billing",
                          count=rng.randint(550, 800), dest={"kind": "print"}), "bulk_export")


@scenario("usb_copy", "external_media")
def usb_copy(ctx: Context, rng: random.Random) -> None:
    """A support agent copies a few dozen customers to a USB stick."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "crm.audit", "copy", "crm.customers", ("identity", "contact"),
                          purpose="customer_support", ids=ctx.customers(rng, rng.randint(10, 60)),
                          dest=_USB), "external_media")


@scenario("usb_bulk_dump", "external_media", raises=("external_media", "bulk_export"))
def usb_bulk_dump(ctx: Context, rng: random.Random) -> None:
    """A marketer exports 1,200 segment members to a removable disk."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE, quiet=True)
    ev = ctx.access(t, a, "mkt.audit", "export", "mkt.segments", ("preferences",),
                    purpose="marketing", count=rng.randint(1100, 1400), dest=_USB)
    ctx.expect(ev, "external_media")
    ctx.expect(ev, "bulk_export")


@scenario("payroll_to_usb", "external_media")
def payroll_to_usb(ctx: Context, rng: random.Random) -> None:
    """HR copies payroll records to a removable disk "to work at home"."""
    t, a = ctx.slot(rng, "hr", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "hr.audit", "copy", "hr.payroll", ("employment",),
                          purpose="employment_administration", ids=ctx.employee(rng, 25),
                          dest=_USB), "external_media")


@scenario("personal_freemail", "external_email")
def personal_freemail(ctx: Context, rng: random.Random) -> None:
    """A support agent mails customer details to a personal mailbox."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "crm.audit", "email", "crm.customers", ("identity", "contact"),
                          purpose="customer_support", ids=ctx.customers(rng, 3),
                          dest={"kind": "email", "domain": C.FREEMAIL_DOMAINS[0]}),
               "external_email")


@scenario("lookalike_domain", "external_email")
def lookalike_domain(ctx: Context, rng: random.Random) -> None:
    """Invoices mailed to hikari-example.com, a look-alike of the internal domain."""
    t, a = ctx.slot(rng, "billing", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "billing.audit", "email", "billing.invoices",
                          ("identity", "payment"), purpose="billing", ids=ctx.customers(rng, 2),
                          dest={"kind": "email", "domain": C.FREEMAIL_DOMAINS[2]}),
               "external_email")


@scenario("processor_mail_wrong_category", "external_email")
def processor_mail_wrong_category(ctx: Context, rng: random.Random) -> None:
    """Identity data mailed to MailCloud, which is approved for contact data only."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "crm.audit", "email", "crm.customers", ("identity", "contact"),
                          purpose="customer_support", ids=ctx.customers(rng),
                          dest={"kind": "email", "domain": "mailcloud.example"}),
               "external_email")


@scenario("rogue_ad_vendor", "unapproved_third_party")
def rogue_ad_vendor(ctx: Context, rng: random.Random) -> None:
    """Marketing uploads a segment to an ad network that is no processor of ours."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "mkt.audit", "transfer", "mkt.segments",
                          ("contact", "preferences"), purpose="marketing",
                          ids=ctx.customers(rng, rng.randint(50, 200)),
                          dest=_to(C.ROGUE_VENDOR)), "unapproved_third_party")


@scenario("processor_wrong_purpose", "unapproved_third_party")
def processor_wrong_purpose(ctx: Context, rng: random.Random) -> None:
    """Support data sent to PayQuick, a processor approved for billing only."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "crm.audit", "transfer", "crm.customers",
                          ("identity", "contact"), purpose="customer_support",
                          ids=ctx.customers(rng, 5), dest=_processor("PayQuick")),
               "unapproved_third_party")


@scenario("personal_cloud", "unapproved_third_party")
def personal_cloud(ctx: Context, rng: random.Random) -> None:
    """An engineer copies device logs to a personal cloud drive (no country given)."""
    t, a = ctx.slot(rng, "engineer", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "dwh.audit", "copy", "dwh.app_logs", ("device",),
                          purpose="troubleshooting", ids=ctx.customers(rng, 20),
                          dest=_to(C.PERSONAL_CLOUD, "cloud_storage")),
               "unapproved_third_party")


@scenario("partly_consented_share", "unapproved_third_party")
def partly_consented_share(ctx: Context, rng: random.Random) -> None:
    """A partner share where one of the subjects never consented (the others did)."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE, quiet=True)
    ids = [ctx.registered(rng, ("consent_granted", t - rng.randint(10, 300) * DAY,
                                ("marketing",))) for _ in range(3)]
    ids.insert(rng.randint(0, 3), ctx.customers(rng)[0])
    ctx.expect(ctx.access(t, a, "mkt.audit", "share", "mkt.profiles", ("contact",),
                          purpose="marketing", ids=ids, dest=_to(C.PARTNER)),
               "unapproved_third_party")


@scenario("offshore_without_scc", "cross_border_transfer")
def offshore_without_scc(ctx: Context, rng: random.Random) -> None:
    """Tickets handed to the Philippine contact centre, approved but without SCC yet."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE, quiet=True)
    ctx.expect(ctx.access(t, a, "crm.audit", "transfer", "crm.tickets", ("identity", "contact"),
                          purpose="customer_support", ids=ctx.customers(rng, rng.randint(5, 30)),
                          dest=_processor("Bayani Contact Center")), "cross_border_transfer")


@scenario("foreign_cloud_upload", "cross_border_transfer",
          raises=("cross_border_transfer", "unapproved_third_party"))
def foreign_cloud_upload(ctx: Context, rng: random.Random) -> None:
    """A marketer uploads contacts to an unapproved cloud in Singapore."""
    t, a = ctx.slot(rng, "marketing", "business", 5 * MINUTE, quiet=True)
    ev = ctx.access(t, a, "mkt.audit", "transfer", "mkt.campaign_audience", ("contact",),
                    purpose="marketing", ids=ctx.customers(rng, rng.randint(20, 100)),
                    dest=_to(C.FOREIGN_CLOUD, "cloud_storage"))
    ctx.expect(ev, "cross_border_transfer")
    ctx.expect(ev, "unapproved_third_party")


@scenario("offshore_mail", "cross_border_transfer")
def offshore_mail(ctx: Context, rng: random.Random) -> None:
    """A ticket mailed to the Philippine contact centre: approved processor, so no
    external_email, but still a transfer without safeguards."""
    t, a = ctx.slot(rng, "support_agent", "business", 5 * MINUTE, quiet=True)
    p = C.PROCESSOR_BY_NAME["Bayani Contact Center"]
    ctx.expect(ctx.access(t, a, "crm.audit", "email", "crm.tickets", ("contact",),
                          purpose="customer_support", ids=ctx.customers(rng),
                          dest={"kind": "email", "domain": p.domain, "country": p.country}),
               "cross_border_transfer")
