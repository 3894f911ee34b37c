"""Concise builders for the unit tests of the core: events, records, policies, engines.

Documents are built as JSON-shaped dicts and decoded by the real :class:`Decoder`, so a test
event is exactly what the watchdog would accept from a log line (a builder mistake fails
loudly instead of producing an impossible object).

The defaults describe one clean world: account ``e1`` is an active ``support_agent`` reading
one customer's identity and contact data for ``customer_support`` from the internal network
on a Wednesday at 10:00 Tokyo time. A test changes only what it is about, so "nothing fires"
for the default event is a meaningful baseline.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson

from watchdog.alerts.model import Alert
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.decode import Decoder, Rejection
from watchdog.engine.engine import Engine
from watchdog.events import (
    AccessEvent,
    AccountRecord,
    DirectoryRecord,
    SubjectRecord,
    check_times,
    epoch,
)
from watchdog.policy import Policy, parse_policy
from watchdog.rules import default_rules

KEY = b"test-key-0123456789abcdef"
# Wednesday 2026-11-18, 10:00 in Asia/Tokyo: inside business hours.
BASE = datetime(2026, 11, 18, 1, 0, tzinfo=UTC)

POLICY_DOC: dict[str, Any] = {
    "organization": "Test K.K.",
    "clauses": {"revoked_account": "Test §1 accounts of leavers are invalidated"},
    "internal_domains": ["example.co.jp"],
    "internal_networks": ["10.0.0.0/8"],
    "business_hours": {"timezone": "Asia/Tokyo", "start": "08:00", "end": "20:00",
                       "weekdays": [1, 2, 3, 4, 5]},
    "roles": {
        "support_agent": {"categories": ["identity", "contact", "address", "purchase"],
                          "purposes": ["customer_support"]},
        "billing": {"categories": ["identity", "contact", "payment"], "purposes": ["billing"]},
        "marketer": {"categories": ["identity", "contact", "preferences", "behavior"],
                     "purposes": ["marketing", "analytics"]},
        "dba": {"categories": ["identity", "contact", "payment", "purchase"],
                "purposes": ["maintenance"], "after_hours": True, "bulk_export": True},
    },
    "processors": [
        {"name": "PayQuick", "domains": ["payquick.example"], "purposes": ["billing"],
         "categories": ["identity", "contact", "payment"], "country": "JP"},
        {"name": "MailCloud", "domains": ["mailcloud.example"], "purposes": ["customer_support"],
         "categories": ["identity", "contact"], "country": "US", "safeguards": "SCC"},
        {"name": "CheapHost", "domains": ["cheaphost.example"], "purposes": ["customer_support"],
         "categories": ["identity", "contact"], "country": "US"},
    ],
    "adequate_countries": ["JP", "GB", "DE", "FR"],
    "retention_days": {"behavior": 365, "purchase": 1825},
    "minor_allowed_purposes": ["customer_support", "billing"],
    "thresholds": {"bulk_export_subjects": 500, "bulk_export_subjects_per_hour": 2000,
                   "restriction_grace_hours": 0, "reidentification_window_minutes": 60,
                   "failed_logins": 10, "source_silence_minutes": 30},
}

_ids = itertools.count(1)
_event_decoder = Decoder(AccessEvent, check=check_times)
_dir_decoder = Decoder(DirectoryRecord, check=check_times)
_subj_decoder = Decoder(SubjectRecord, check=check_times)
_acct_decoder = Decoder(AccountRecord, check=check_times)


def at(**delta: float) -> datetime:
    """``BASE`` shifted by ``timedelta(**delta)``."""
    return BASE + timedelta(**delta)


def stamp(when: datetime | str) -> str:
    return when if isinstance(when, str) else when.isoformat()


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


_UNSET: Any = object()


def event_doc(
    *,
    id: str | None = None,
    when: datetime | str = BASE,
    action: str = "read",
    user: str = "e1",
    outcome: str | None = None,
    dataset: str | None = "crm.audit",
    sequence: int | None = None,
    ip: str | None = "10.1.2.3",
    roles: list[str] | None = None,
    resource: str | None = "crm.customers",
    categories: list[str] | None = _UNSET,
    subject_ids: list[str] | None = _UNSET,
    subject_count: int | None = None,
    purpose: str | None = _UNSET,
    anonymized: bool | None = None,
    collected_at: datetime | str | None = None,
    dest: dict[str, Any] | None = None,
    data: bool = True,
) -> dict[str, Any]:
    """An access event as a JSON-shaped dict. ``None`` leaves a field out; ``data=False``
    leaves out the whole ``data`` object (a login)."""
    ev: dict[str, Any] = {"id": id or f"ev-{next(_ids)}", "action": action}
    if outcome is not None:
        ev["outcome"] = outcome
    if dataset is not None:
        ev["dataset"] = dataset
    if sequence is not None:
        ev["sequence"] = sequence
    doc: dict[str, Any] = {"@timestamp": stamp(when), "event": ev, "user": {"id": user}}
    if roles is not None:
        doc["user"]["roles"] = roles
    if ip is not None:
        doc["source"] = {"ip": ip}
    if data:
        d: dict[str, Any] = {}
        defaults = {"categories": ["identity", "contact"], "subject_ids": ["c-1"],
                    "purpose": "customer_support"}
        given = {"categories": categories, "subject_ids": subject_ids, "purpose": purpose}
        for k, v in given.items():
            v = defaults[k] if v is _UNSET else v
            if v is not None:
                d[k] = v
        if resource is not None:
            d["resource"] = resource
        if subject_count is not None:
            d["subject_count"] = subject_count
        if anonymized is not None:
            d["anonymized"] = anonymized
        if collected_at is not None:
            d["collected_at"] = stamp(collected_at)
        doc["data"] = d
    if dest is not None:
        doc["destination"] = dest
    return doc


def decode_event(doc: dict[str, Any]) -> AccessEvent:
    ev = _event_decoder.decode(orjson.dumps(doc))
    if isinstance(ev, Rejection):
        raise ValueError(f"builder made an invalid event: {ev.reason}: {ev.detail}")
    return ev


def event(**kw: Any) -> AccessEvent:
    """An :class:`AccessEvent`; keywords as :func:`event_doc`."""
    return decode_event(event_doc(**kw))


def login(*, outcome: str = "success", **kw: Any) -> AccessEvent:
    kw.setdefault("dataset", "idp.auth")
    return event(action="login", outcome=outcome, data=False, **kw)


def directory(
    user: str = "e1",
    status: str = "active",
    effective: datetime | str = datetime(2026, 1, 1, tzinfo=UTC),
    roles: list[str] | None = _UNSET,
) -> DirectoryRecord:
    doc: dict[str, Any] = {"user_id": user, "status": status, "effective": stamp(effective)}
    roles = ["support_agent"] if roles is _UNSET else roles
    if roles is not None:
        doc["roles"] = roles
    rec = _dir_decoder.decode(orjson.dumps(doc))
    assert not isinstance(rec, Rejection), rec
    return rec


def subject(
    subject_id: str,
    type: str,
    effective: datetime | str = datetime(2026, 1, 1, tzinfo=UTC),
    purposes: list[str] | None = None,
    *,
    categories: list[str] | None = None,
    resources: list[str] | None = None,
) -> SubjectRecord:
    doc: dict[str, Any] = {"subject_id": subject_id, "type": type, "effective": stamp(effective)}
    if purposes is not None:
        doc["purposes"] = purposes
    if categories is not None:
        doc["categories"] = categories
    if resources is not None:
        doc["resources"] = resources
    rec = _subj_decoder.decode(orjson.dumps(doc))
    assert not isinstance(rec, Rejection), rec
    return rec


def account(
    user: str = "e1",
    enabled: bool = True,
    effective: datetime | str = datetime(2026, 1, 1, tzinfo=UTC),
    roles: list[str] | None = None,
    password_changed_at: datetime | str | None = None,
) -> AccountRecord:
    """An identity-provider account record (1.1)."""
    doc: dict[str, Any] = {"user_id": user, "enabled": enabled, "effective": stamp(effective)}
    if roles is not None:
        doc["roles"] = roles
    if password_changed_at is not None:
        doc["password_changed_at"] = stamp(password_changed_at)
    rec = _acct_decoder.decode(orjson.dumps(doc))
    assert not isinstance(rec, Rejection), rec
    return rec


def policy_doc(**overrides: Any) -> dict[str, Any]:
    """``POLICY_DOC`` with ``overrides`` merged in (nested dicts merge, the rest replaces)."""
    return _merge(POLICY_DOC, overrides)


def policy(**overrides: Any) -> Policy:
    return parse_policy(policy_doc(**overrides), "test-policy")


def default_directory() -> list[DirectoryRecord]:
    return [
        directory("e1", roles=["support_agent"]),
        directory("e2", roles=["billing"]),
        directory("m1", roles=["marketer"]),
        directory("d1", roles=["dba"]),
    ]


def engine(
    pol: Policy | None = None,
    *,
    dir_records: Iterable[DirectoryRecord] | None = None,
    subjects: Iterable[SubjectRecord] = (),
    accounts: Iterable[AccountRecord] = (),
) -> Engine:
    eng = Engine(pol or policy(), Pseudonymizer(KEY), default_rules())
    for rec in default_directory() if dir_records is None else dir_records:
        eng.apply_directory(rec)
    for srec in subjects:
        eng.apply_subject(srec)
    for arec in accounts:
        eng.apply_account(arec)
    return eng


def feed(eng: Engine, events: Iterable[AccessEvent]) -> list[Alert]:
    """Process ``events`` in the order given (the engine expects event-time order)."""
    out: list[Alert] = []
    for ev in events:
        out.extend(eng.process(ev, epoch(ev.timestamp)))
    return out


def run(
    events: Iterable[AccessEvent] | AccessEvent,
    pol: Policy | None = None,
    *,
    dir_records: Iterable[DirectoryRecord] | None = None,
    subjects: Iterable[SubjectRecord] = (),
    accounts: Iterable[AccountRecord] = (),
) -> list[Alert]:
    """All alerts of a fresh engine over ``events``."""
    if isinstance(events, AccessEvent):
        events = [events]
    return feed(engine(pol, dir_records=dir_records, subjects=subjects, accounts=accounts),
                events)


def only(rule: str, alerts: Iterable[Alert]) -> list[Alert]:
    return [a for a in alerts if a.rule == rule]


def rules(alerts: Iterable[Alert]) -> list[str]:
    return sorted(a.rule for a in alerts)


def as_json(alert: Alert) -> dict[str, Any]:
    return msgspec.json.decode(msgspec.json.encode(alert))
