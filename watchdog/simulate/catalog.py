"""The synthetic organisation's fixed facts: its systems, roles, processors and partners.

Everything here is data. ``policy`` turns it into the contract's policy document, ``org``
staffs the roles, ``behaviour`` says what each role does in which system. The company is
fictional ("Hikari Commerce", an online retailer in Tokyo); domains use ``.example`` and
outside addresses come from the documentation ranges (RFC 5737).
"""

from __future__ import annotations

from dataclasses import dataclass

from watchdog.policy.rule_ids import CONTRACT_RULE_IDS

ORGANIZATION = "Hikari Commerce K.K. (synthetic)"
POLICY_TZ = "Asia/Tokyo"
BUSINESS_START = "08:00"
BUSINESS_END = "20:00"
BUSINESS_WEEKDAYS = (1, 2, 3, 4, 5)
INTERNAL_DOMAINS = ("hikari.example", "hikari-group.example")
INTERNAL_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12")
# Japan's adequacy list: the EEA and the UK (plus Japan itself).
ADEQUATE_COUNTRIES = (
    "JP", "GB", "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR",
    "HU", "IS", "IE", "IT", "LV", "LI", "LT", "LU", "MT", "NL", "NO", "PL", "PT", "RO",
    "SK", "SI", "ES", "SE",
)
RETENTION_DAYS = {
    "location": 90, "device": 180, "behavior": 365, "preferences": 730, "health": 1825,
    "purchase": 2555, "payment": 2555,
}
MINOR_ALLOWED_PURPOSES = ("customer_support", "billing", "order_fulfilment")
THRESHOLDS = {
    "bulk_export_subjects": 500,
    "bulk_export_subjects_per_hour": 2000,
    "restriction_grace_hours": 72,
    "reidentification_window_minutes": 60,
    "failed_logins": 10,
    # Every dataset carries steady batch-job traffic (a gap of at most 4 minutes, see
    # ``background``), so 30 minutes of silence never happens in clean traffic.
    "source_silence_minutes": 30,
    # 1.1 obligations: the identity provider follows the directory within the hour; erasure
    # within two weeks (so that a month holds whole obligations); passwords every 90 days
    "revocation_minutes": 60,
    "erasure_days": 14,
    "password_max_age_days": 90,
}
# Purposes whose legal basis is the subject's consent (consent_missing).
CONSENT_PURPOSES = ("analytics", "marketing")


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    id_prefix: str  # event ids look like "crm-9f86d081884c7d65"
    utc: bool  # "Z" timestamps; otherwise "+09:00"
    millis: bool  # millisecond precision; otherwise whole seconds


DATASETS: tuple[Dataset, ...] = (
    Dataset("crm.audit", "crm", utc=True, millis=True),
    Dataset("billing.audit", "bil", utc=False, millis=True),
    Dataset("mkt.audit", "mkt", utc=True, millis=True),
    Dataset("dwh.audit", "dwh", utc=True, millis=True),
    Dataset("hr.audit", "hr", utc=False, millis=False),
    Dataset("idp.auth", "idp", utc=True, millis=True),
)
DATASET_BY_NAME = {d.name: d for d in DATASETS}
IDP = "idp.auth"


@dataclass(frozen=True, slots=True)
class RoleSpec:
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    after_hours: bool = False
    bulk_export: bool = False


ROLES: dict[str, RoleSpec] = {
    "support_agent": RoleSpec(("identity", "contact", "address", "purchase", "device"),
                              ("customer_support",)),
    "billing": RoleSpec(("identity", "contact", "address", "payment", "purchase"), ("billing",)),
    "marketing": RoleSpec(("contact", "preferences", "behavior", "purchase"), ("marketing",)),
    "analyst": RoleSpec(("behavior", "purchase", "device", "location"), ("analytics",)),
    "engineer": RoleSpec(("device", "behavior"), ("troubleshooting",)),
    "sre": RoleSpec(("device", "behavior"), ("troubleshooting",), after_hours=True),
    "dba": RoleSpec(("identity", "contact", "address", "payment", "purchase", "behavior",
                     "device"), ("maintenance",), after_hours=True, bulk_export=True),
    "hr": RoleSpec(("identity", "contact", "address", "employment", "my_number", "health"),
                   ("employment_administration",)),
    "security_analyst": RoleSpec(("identity", "device", "location", "credentials"),
                                 ("security",), after_hours=True),
    # batch jobs: around the clock, large nightly transfers to processors
    "svc_crm": RoleSpec(("identity", "contact", "address", "purchase"),
                        ("customer_support", "order_fulfilment"), True, True),
    "svc_billing": RoleSpec(("identity", "contact", "payment", "purchase"), ("billing",),
                            True, True),
    "svc_marketing": RoleSpec(("contact", "preferences", "behavior"), ("marketing",), True, True),
    "svc_dwh": RoleSpec(("behavior", "purchase", "device", "location"), ("analytics",),
                        True, True),
    "svc_hr": RoleSpec(("identity", "employment"), ("employment_administration",), True, True),
    "svc_idp": RoleSpec((), (), after_hours=True),
}


@dataclass(frozen=True, slots=True)
class Department:
    name: str
    roles: tuple[str, ...]
    share: float  # of human accounts
    volume: float  # relative events per working day
    ip_octet: int  # office LAN 10.<octet>.x.x


DEPARTMENTS: tuple[Department, ...] = (
    Department("customer support", ("support_agent",), 0.36, 1.3, 20),
    Department("customer support", ("support_agent", "billing"), 0.04, 1.2, 20),  # leads
    Department("billing", ("billing",), 0.09, 1.0, 21),
    Department("marketing", ("marketing",), 0.10, 0.8, 22),
    Department("data & analytics", ("analyst",), 0.08, 0.7, 23),
    Department("engineering", ("engineer",), 0.20, 0.5, 24),
    Department("site reliability", ("sre",), 0.04, 0.6, 25),
    Department("platform", ("dba",), 0.025, 0.8, 26),
    Department("human resources", ("hr",), 0.04, 0.8, 27),
    Department("security", ("security_analyst",), 0.025, 0.8, 28),
)

# Batch/service accounts: (user id, role, dataset it writes to).
SERVICES: tuple[tuple[str, str, str], ...] = (
    ("svc-crm-sync", "svc_crm", "crm.audit"),
    ("svc-billing-batch", "svc_billing", "billing.audit"),
    ("svc-mkt-engine", "svc_marketing", "mkt.audit"),
    ("svc-dwh-etl", "svc_dwh", "dwh.audit"),
    ("svc-hr-sync", "svc_hr", "hr.audit"),
    ("svc-idp-scim", "svc_idp", "idp.auth"),
)


@dataclass(frozen=True, slots=True)
class Processor:
    name: str
    domain: str
    purposes: tuple[str, ...]
    categories: tuple[str, ...]
    country: str
    safeguards: str | None = None


PROCESSORS: tuple[Processor, ...] = (
    Processor("PayQuick", "payquick.example", ("billing",), ("identity", "contact", "payment"),
              "JP"),
    Processor("MailCloud", "mailcloud.example", ("customer_support", "marketing"),
              ("contact", "preferences"), "US", "SCC"),
    Processor("Skyline Analytics", "skyline-analytics.example", ("analytics",),
              ("behavior", "purchase", "device"), "US", "SCC"),
    Processor("Hoshi Logistics", "hoshi-logistics.example", ("order_fulfilment",),
              ("identity", "contact", "address"), "JP"),
    # Approved for overflow support, but its SCC is not signed yet: clean traffic never
    # sends to it; the cross_border_transfer scenarios do.
    Processor("Bayani Contact Center", "bayani-cc.example", ("customer_support",),
              ("identity", "contact", "purchase"), "PH"),
)
PROCESSOR_BY_NAME = {p.name: p for p in PROCESSORS}

# A business partner that is not a processor: data goes there only with consent.
PARTNER = ("Sakura Travel", "sakura-travel.example", "JP")

# Places the scenarios send data that they should not.
ROGUE_VENDOR = ("AdReach Media", "adreach.example", "JP")
PERSONAL_CLOUD = ("FileDrop", "filedrop.example")
FOREIGN_CLOUD = ("DataHarbor", "dataharbor.example", "SG")
FREEMAIL_DOMAINS = ("freemail.example", "webmail.example.net", "hikari-example.com")

# Documentation ranges: "outside" source addresses.
EXTERNAL_NETS = ("203.0.113.", "198.51.100.", "192.0.2.")

CLAUSES = {
    "revoked_account": "Hikari Commerce Privacy Policy §9 Security measures: accounts of "
                       "staff who leave, transfer or are suspended are invalidated at once",
    "unknown_account": "Hikari Commerce Privacy Policy §9 Security measures: only registered "
                       "staff accounts may access personal data",
    "bulk_export": "Hikari Commerce Privacy Policy §9 Security measures: restricting the "
                   "means of taking personal data out",
    "external_media": "Hikari Commerce Privacy Policy §9 Security measures: no recording of "
                      "personal data on external recording media",
    "external_email": "Hikari Commerce Privacy Policy §9 Security measures: monitoring of "
                      "e-mail leaving the company",
    "unapproved_third_party": "Hikari Commerce Privacy Policy §5 Provision to third parties: "
                              "only to entrusted processors or with the person's consent",
    "cross_border_transfer": "Hikari Commerce Privacy Policy §6 Transfers abroad: only to "
                             "adequate countries or under safeguards such as SCC",
    "purpose_violation": "Hikari Commerce Privacy Policy §2 Purposes of use",
    "category_not_permitted": "Hikari Commerce Privacy Policy §9 Security measures: access "
                              "limited to what each duty needs",
    "subject_restricted": "Hikari Commerce Privacy Policy §8 Suspension and erasure on request",
    "marketing_opt_out": "Hikari Commerce Privacy Policy §7 Stopping advertising mail",
    "minor_data": "Hikari Commerce Privacy Policy §4 Personal information of minors",
    "reidentification": "Hikari Commerce Privacy Policy §10 Anonymously processed information: "
                        "no collation to identify a person",
    "retention_expired": "Hikari Commerce Privacy Policy §3 Retention periods",
    "off_hours_access": "Hikari Commerce Privacy Policy §9 Security measures: handling under "
                        "supervision during working hours",
    "external_network": "Hikari Commerce Privacy Policy §9 Security measures: access only from "
                        "the company network",
    "brute_force": "Hikari Commerce Privacy Policy §9 Security measures: protection against "
                   "unauthorised access",
    "log_gap": "Hikari Commerce Privacy Policy §9 Security measures: access logs kept and "
               "monitored",
    "anomaly": "Hikari Commerce Privacy Policy §9 Security measures: monitoring of access",
}

CLAUSES.update({
    "account_not_revoked": "Hikari Commerce Privacy Policy §9 Security measures: accounts of "
                           "staff who leave, transfer or are suspended are invalidated at once",
    "erasure_overdue": "Hikari Commerce Privacy Policy §8 Suspension and erasure on request: "
                       "erased from every system within 14 days",
    "password_expired": "Hikari Commerce Privacy Policy §9 Security measures: passwords "
                        "changed at least every 90 days",
    "consent_missing": "Hikari Commerce Privacy Policy §11 Consent: processing based on "
                       "consent stops when consent is withdrawn",
    "authority_disclosure": "Hikari Commerce Privacy Policy §5 Provision to third parties: "
                            "disclosures required by law are recorded",
})

# The contract's rules, in the contract's order (1.1's at the end).
RULES: tuple[str, ...] = CONTRACT_RULE_IDS
# Rules the simulated policy leaves off (no commitment names them): their injected violations
# must raise nothing, and are written to truth.jsonl as `"expected": false`.
RULES_OFF: tuple[str, ...] = ("off_hours_access", "external_network")
RULES_ON: tuple[str, ...] = tuple(r for r in RULES if r not in RULES_OFF)
# Where a public authority is (authority_disclosure) and the law a disclosure rests on.
AUTHORITIES = (("Tokyo District Public Prosecutors Office", "JP",
                "Code of Criminal Procedure Art. 197(2)"),
               ("Minato Tax Office", "JP", "National Tax Collection Act Art. 141"))
