"""Shared pieces of the fuzz tests: the example budget and the strategies.

Budget: ``WATCHDOG_FUZZ_EXAMPLES`` is the total number of examples for the whole folder
(``make fuzz`` sets 1,000,000). Each target takes its ``share`` of it, weighted by how much an
example costs, so that the shares add up to about the same wall time per target. Without the
variable every target runs its small CI budget (the whole folder in well under a minute).

The event strategy is derived from the contract's access-event schema (``schema_strategy``),
with small pools for the fields that make rules interact: a handful of accounts, subjects,
datasets, resources, domains and purposes drawn from the generated policy, and times within a
few hours, so windows, thresholds and the register actually come into play.
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from watchdog import schemas
from watchdog.rules import RULE_IDS

TOTAL = int(os.environ.get("WATCHDOG_FUZZ_EXAMPLES", "0") or 0)
# Hypothesis remembers every example of a run (to know when it has seen everything), about
# 50 KB each for the bigger strategies: a large budget runs in rounds of at most this many,
# each a fresh run, so memory stays flat.
ROUND = 2_000
_SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


# Each target's share of WATCHDOG_FUZZ_EXAMPLES, chosen so that every target gets wall time
# in proportion to its importance rather than examples in proportion to its speed (measured
# cost per example on one idle core of the dev machine in brackets; 1,000,000 in all took
# 35 min of CPU, under an hour of wall time on a loaded 2-core machine).
SHARES: dict[str, float] = {
    "decode_bytes": 0.20,  # (0.4 ms) arbitrary bytes
    "decode_json": 0.015,  # (6.7 ms) arbitrary JSON values
    "decode_mutated": 0.018,  # (14 ms) valid documents with members replaced by anything
    "decode_tokens": 0.07,  # (1.7 ms) NaN/Infinity, invalid UTF-8, duplicate keys, cuts
    "decode_deep": 0.01,  # (3 ms) nesting up to 300k levels
    "decode_huge": 0.002,  # (15 ms) subject lists around the 100k limit
    "decode_times": 0.05,  # (1.8 ms) timestamps from year 1 to 9999
    "decode_oversized": 0.025,  # (2.4 ms) documents over a small max_bytes
    "decode_valid": 0.024,  # (2.5 ms) schema-valid events are accepted
    "policy_docs": 0.01,  # (9 ms) policy documents: a Policy or a PolicyError
    "policy_generated": 0.005,  # (9 ms) the policy generator makes valid policies
    "engine": 0.012,  # (32 ms) whole organisations through the Detector
    "engine_deterministic": 0.0018,  # (34 ms) the same inputs twice
    "order_reorderer": 0.01,  # (18 ms) random push/idle/assign sequences
    "order_partitions": 0.003,  # (38 ms) partitioning does not change the alerts
    "order_redelivery": 0.003,  # (33 ms) redeliveries are dropped once
    "order_live": 0.003,  # (60 ms) the daemon's pipeline against replay, strays and pauses
    "order_anomaly": 0.003,  # (240 ms) the same with the anomaly stage, on the insider scenario
    "atheris": 0.5347,  # (0.03 ms) coverage-guided inputs, in a subprocess
}


def budget(target: str, ci: int) -> int:
    """Examples for one target: its share of ``WATCHDOG_FUZZ_EXAMPLES``, else ``ci``."""
    return max(ci, int(TOTAL * SHARES[target])) if TOTAL else ci


def fuzz(target: str, ci: int, *, slow: bool = False) -> Callable[[Callable[[], None]],
                                                                   Callable[[], None]]:
    """Run a ``@given`` test on its budget: ``target``'s share of the total, or ``ci``.

    ``deadline=None``: inputs vary in size by orders of magnitude (a 100k subject list next to
    an empty one), so a per-example deadline would only report slow machines. ``too_slow`` is
    suppressed everywhere (the engine targets draw whole organisations on purpose), and
    ``data_too_large``/``large_base_example`` for the targets that build big documents
    (``slow``). No example database: nothing is written into the repository; a failure prints
    its reproduction blob instead. Budgets above ``ROUND`` run in rounds.
    """
    n = budget(target, ci)
    per_round = min(n, ROUND)
    rounds = -(-n // per_round)

    def decorate(test: Callable[[], None]) -> Callable[[], None]:
        inner = settings(max_examples=per_round, deadline=None, database=None,
                         print_blob=True,
                         suppress_health_check=_SLOW_CHECKS if slow else [HealthCheck.too_slow],
                         )(test)

        def run() -> None:
            for _ in range(rounds):
                inner()

        run.__name__ = test.__name__
        run.__qualname__ = test.__qualname__
        run.__doc__ = test.__doc__
        run.__module__ = test.__module__
        return run

    return decorate


# -- time ---------------------------------------------------------------------------------
T0 = datetime(2026, 11, 16, 0, 0, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
OFFSETS = (0, 0, 0, 540, -300, 330, 845, -720, 840)  # minutes: Z, Tokyo, NY, India, ...


@st.composite
def rfc3339(draw: st.DrawFn, lo: float, hi: float) -> str:
    """An RFC 3339 time in [lo, hi] (epoch seconds) with a random offset and precision."""
    t = draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
    precision = draw(st.sampled_from((0, 3, 6)))
    t = round(t, precision)
    off = draw(st.sampled_from(OFFSETS))
    dt = datetime.fromtimestamp(t, timezone(timedelta(minutes=off)))
    text = dt.isoformat(timespec={0: "seconds", 3: "milliseconds", 6: "microseconds"}[precision])
    if off == 0 and draw(st.booleans()):
        text = text[:-6] + "Z"
    return text


# -- JSON Schema -> strategy ------------------------------------------------------------------
def schema_strategy(schema: dict[str, Any], overrides: dict[str, st.SearchStrategy[Any]],
                    path: str = "", always: frozenset[str] = frozenset()) -> st.SearchStrategy[Any]:
    """Schema-valid JSON values for the subset of JSON Schema the contract uses.

    ``overrides`` maps a JSON pointer (``/data/subject_ids``) to the strategy for it;
    ``always`` names optional members to include every time (to make rules interact).
    """
    if path in overrides:
        return overrides[path]
    kind = schema.get("type")
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ())) | {
            k for k in props if f"{path}/{k}" in always}
        req = {k: schema_strategy(v, overrides, f"{path}/{k}", always)
               for k, v in props.items() if k in required}
        opt = {k: schema_strategy(v, overrides, f"{path}/{k}", always)
               for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(req, optional=opt)
    if kind == "array":
        items = schema_strategy(schema.get("items", {}), overrides, f"{path}/items", always)
        return st.lists(items, min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 8), 8))
    if kind == "string":
        if schema.get("format") == "date-time":
            return rfc3339(T0, T0 + 86400.0)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0),
                       max_size=min(schema.get("maxLength", 24), 24))
    if kind == "integer":
        lo = schema.get("minimum")
        return st.one_of(st.integers(lo, (lo or 0) + 50), st.integers(min_value=lo))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    raise NotImplementedError(f"schema construct at {path or '/'}: {schema}")


# -- the world: a policy and pools that make rules interact -------------------------------------
CATEGORIES: tuple[str, ...] = tuple(
    schemas.load("access-event")["properties"]["data"]["properties"]["categories"]["items"]
    ["enum"])
PURPOSES = ("customer_support", "billing", "marketing", "analytics", "maintenance", "hr")
ROLE_NAMES = ("agent", "billing", "marketer", "dba", "hr", "auditor")
ACCOUNTS = tuple(f"acct-{i}" for i in range(4))
UNKNOWN_ACCOUNTS = ("ghost-1",)
# distinctive, so that a leak is found by a plain substring search
SUBJECTS = tuple(f"SUBJ-{i:04d}-raw" for i in range(12))
DATASETS = ("crm.audit", "billing.audit", "dwh.audit")
RESOURCES = ("crm.customers", "crm.orders", "crm", "dwh.anon_customers", "dwh.sales",
             "hr.staff", "")
DOMAINS = ("example.co.jp", "mail.example.co.jp", "EXAMPLE.CO.JP.", "payquick.example",
           "eu.payquick.example", "mailcloud.example", "gmail.com", "evil.example", "")
ORGS = ("PayQuick", "payquick", "MailCloud", "CheapHost", "Unknown Ltd", "")
COUNTRIES = ("JP", "US", "DE", "CN", "BR", "GB")
IPS = ("10.1.2.3", "192.168.0.9", "203.0.113.7", "2001:db8::1", "fc00::5", "not-an-ip", "")
TIMEZONES = ("UTC", "Asia/Tokyo", "America/New_York", "Pacific/Kiritimati", "Europe/London",
             "Asia/Kolkata")
CIDRS = ("10.0.0.0/8", "192.168.0.0/16", "fc00::/7", "127.0.0.1", "203.0.113.0/24")
PROCESSORS = ("PayQuick", "MailCloud", "CheapHost")


def _subset(items: tuple[str, ...], max_size: int | None = None,
            min_size: int = 0) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), unique=True, min_size=min_size,
                    max_size=max_size or len(items))


def _hhmm() -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(st.integers(0, 23), st.integers(0, 59)).map(
            lambda hm: f"{hm[0]:02d}:{hm[1]:02d}"),
        st.just("24:00"))


@st.composite
def policy_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid policy document: roles, processors, thresholds and business hours."""
    names = draw(st.lists(st.sampled_from(ROLE_NAMES), unique=True, min_size=1, max_size=4))
    roles = {n: draw(st.fixed_dictionaries({}, optional={
        "categories": _subset(CATEGORIES, 6), "purposes": _subset(PURPOSES, 3),
        "after_hours": st.booleans(), "bulk_export": st.booleans()})) for n in names}
    processors = [draw(st.fixed_dictionaries({"name": st.just(name)}, optional={
        "domains": st.just([f"{name.lower()}.example"]), "purposes": _subset(PURPOSES, 3),
        "categories": _subset(CATEGORIES, 6), "country": st.sampled_from(COUNTRIES),
        "safeguards": st.sampled_from(("SCC", "BCR", ""))}))
        for name in draw(_subset(PROCESSORS))]
    doc: dict[str, Any] = {"organization": draw(st.text(max_size=10)), "roles": roles,
                           "processors": processors}
    optional = draw(st.fixed_dictionaries({}, optional={
        "clauses": st.dictionaries(st.sampled_from(RULE_IDS), st.text(max_size=20)),
        "internal_domains": st.just(["example.co.jp"]),
        "internal_networks": _subset(CIDRS),
        "business_hours": st.fixed_dictionaries({}, optional={
            "timezone": st.sampled_from(TIMEZONES), "start": _hhmm(), "end": _hhmm(),
            "weekdays": st.lists(st.integers(1, 7), unique=True)}),
        "adequate_countries": _subset(COUNTRIES),
        "retention_days": st.dictionaries(st.sampled_from(CATEGORIES), st.integers(1, 4000)),
        "minor_allowed_purposes": _subset(PURPOSES),
    }))
    doc.update(optional)
    doc["thresholds"] = draw(st.fixed_dictionaries({}, optional={
        "bulk_export_subjects": st.integers(0, 6),
        "bulk_export_subjects_per_hour": st.integers(0, 12),
        "restriction_grace_hours": st.one_of(st.integers(0, 3), st.floats(0, 3)),
        "reidentification_window_minutes": st.integers(0, 120),
        "failed_logins": st.integers(1, 5),
        "source_silence_minutes": st.integers(1, 90)}))
    if draw(st.booleans()):
        doc["severities"] = draw(st.dictionaries(
            st.sampled_from(RULE_IDS), st.sampled_from(("critical", "high", "medium", "low"))))
    return doc


SPAN = 6 * 3600.0  # event times within six hours: windows and silences both happen


def event_strategy(span: float = SPAN) -> st.SearchStrategy[dict[str, Any]]:
    """Schema-valid access events (derived from access-event.schema.json) over the pools."""
    big_list = st.integers(0, 300).map(lambda n: [f"bulk-{i}" for i in range(n)])
    schema = schemas.load("access-event")
    actions = schema["properties"]["event"]["properties"]["action"]["enum"]
    overrides: dict[str, st.SearchStrategy[Any]] = {
        # every action, and more often the ones with windows (logins, exports)
        "/event/action": st.one_of(st.sampled_from(actions),
                                   st.sampled_from(("login", "export", "read"))),
        "/@timestamp": rfc3339(T0, T0 + span),
        "/event/id": st.integers(0, 5000).map(lambda i: f"ev-{i}"),
        "/event/dataset": st.sampled_from(DATASETS),
        "/event/sequence": st.integers(0, 12),
        "/event/outcome": st.sampled_from(("success", "failure", "failure", "unknown")),
        "/user/id": st.sampled_from(ACCOUNTS + UNKNOWN_ACCOUNTS),
        "/user/name": st.sampled_from(("Taro", "")),
        "/user/roles": _subset(ROLE_NAMES, 3),
        "/source/ip": st.sampled_from(IPS),
        "/host/name": st.just("ws-1"),
        "/data/resource": st.sampled_from(RESOURCES),
        "/data/categories": _subset(CATEGORIES, 4),
        "/data/subject_ids": st.one_of(st.lists(st.sampled_from(SUBJECTS), max_size=6),
                                       big_list),
        "/data/subject_count": st.one_of(st.integers(0, 40), st.integers(min_value=0)),
        "/data/purpose": st.sampled_from(PURPOSES),
        "/data/collected_at": st.one_of(
            rfc3339(T0 - 4000 * 86400.0, T0 + span),
            # not range-checked by the decoder: the retention rule meets any year
            st.sampled_from(("0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999-23:59",
                             "1900-01-01T00:00:00Z"))),
        "/destination/domain": st.sampled_from(DOMAINS),
        "/destination/organization": st.sampled_from(ORGS),
        "/destination/country": st.sampled_from(COUNTRIES),
    }
    return schema_strategy(schema, overrides, always=frozenset({"/data", "/data/resource"}))


def directory_strategy(span: float = SPAN) -> st.SearchStrategy[dict[str, Any]]:
    return schema_strategy(schemas.load("directory-record"), {
        "/user_id": st.sampled_from(ACCOUNTS),
        "/status": st.sampled_from(("active", "active", "active", "departed", "transferred",
                                    "suspended")),
        "/effective": st.one_of(rfc3339(T0 - 86400.0, T0 - 86400.0),
                                rfc3339(T0 - 86400.0, T0 + span)),
        "/roles": _subset((*ROLE_NAMES, "no-such-role"), 3),
        "/department": st.just("sales"),
        "/manager": st.just("boss"),
    })


def subject_strategy(span: float = SPAN) -> st.SearchStrategy[dict[str, Any]]:
    return schema_strategy(schemas.load("subject-record"), {
        "/subject_id": st.sampled_from(SUBJECTS),
        "/effective": rfc3339(T0 - 86400.0, T0 + span),
        # 1.1: scopes are non-empty when given
        "/purposes": _subset(PURPOSES, 3, min_size=1),
        "/categories": _subset(CATEGORIES, 3, min_size=1),
        "/resources": _subset(RESOURCES, 3, min_size=1),
    })


# -- arbitrary JSON -----------------------------------------------------------------------------
def text_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(),
        st.text(alphabet=string.printable + "'\"`\\\u2028\u00e9\U0001f600", max_size=30),
        st.sampled_from(TRICKY),
    )


# values that look like parts of error messages: decode must not be fooled by them
TRICKY = ("", "datetime", "timezone", "RFC 3339", "missing required field", " - at `$.x`",
          "'", '"', "read", "2026-11-20T09:15:02Z", "NaN", "it's \"quoted\"")


def json_values(max_leaves: int = 40) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (recursive), with the awkward numbers included."""
    scalars = st.one_of(
        st.none(), st.booleans(), text_values(),
        st.integers(), st.integers(-(2**63), 2**64), st.floats(allow_nan=False,
                                                               allow_infinity=False))
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=6),
            st.dictionaries(st.one_of(text_values(), st.sampled_from(
                ("@timestamp", "event", "user", "data", "id", "action", "subject_ids",
                 "effective", "status", "type", "user_id", "subject_id", "destination"))),
                children, max_size=6)),
        max_leaves=max_leaves)


def grouped_times(draw: st.DrawFn, n: int, groups: int,
                  span: float) -> tuple[list[float], list[int], list[float]]:
    """Times for ``n`` events in ``groups`` chunks of ``span`` seconds each: the first from
    anywhere after 1970, the next a second to decades later. Returns the chunks' starts, each
    event's chunk and each event's time."""
    start = draw(st.floats(0, 1.5e9))
    starts = []
    for _ in range(groups):
        starts.append(start)
        start += span + draw(st.one_of(st.floats(1, 3600), st.floats(1, 20 * 365 * 86400.0)))
    group = [draw(st.integers(0, groups - 1)) for _ in range(n)]
    return starts, group, [starts[group[i]] + draw(st.floats(0, span)) for i in range(n)]
