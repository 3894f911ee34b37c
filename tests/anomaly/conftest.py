"""Small, fast, deterministic inputs for the anomaly tests (no simulator needed)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.engine.engine import Engine
from watchdog.events import AccessEvent, DirectoryRecord
from watchdog.policy import load_policy
from watchdog.rules import default_rules

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC).timestamp()  # Monday 09:00 JST
DEPTS = ("customer support", "billing", "marketing")
RESOURCES = {
    "customer support": ("crm.customers", "crm.tickets", "crm.orders"),
    "billing": ("billing.invoices", "billing.payments", "crm.customers"),
    "marketing": ("mkt.segments", "mkt.preferences", "mkt.campaigns"),
}
CATS = {
    "customer support": ("identity", "contact"),
    "billing": ("identity", "payment"),
    "marketing": ("preferences", "contact"),
}
ROLE = {"customer support": "support_agent", "billing": "billing", "marketing": "marketing"}


def ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event(t: float, uid: str, eid: str, action: str = "read", *, resource: str | None = None,
          categories: tuple[str, ...] = (), ids: tuple[str, ...] = (), records: int | None = None,
          ip: str = "10.1.1.1", dest: dict | None = None, outcome: str = "success",
          count: int | None = None, nbytes: int | None = None) -> dict:
    doc: dict = {"@timestamp": ts(t), "event": {"id": eid, "action": action, "outcome": outcome,
                                                "dataset": "crm.audit"},
                 "user": {"id": uid}, "source": {"ip": ip}}
    data: dict = {}
    if resource:
        data["resource"] = resource
    if categories:
        data["categories"] = list(categories)
    if ids:
        data["subject_ids"] = list(ids)
    if count is not None:
        data["subject_count"] = count
    if records is not None:
        data["records"] = records
    if nbytes is not None:
        data["bytes"] = nbytes
    if data:
        data["purpose"] = "customer_support"
        doc["data"] = data
    if dest:
        doc["destination"] = dest
    return doc


def decode(doc: dict) -> AccessEvent:
    return msgspec.json.decode(msgspec.json.encode(doc), type=AccessEvent)


def directory_records(n: int) -> list[dict]:
    out = []
    for i in range(n):
        dept = DEPTS[i % len(DEPTS)]
        out.append({"user_id": f"u{i:03d}", "status": "active",
                    "effective": "2025-01-01T00:00:00Z", "roles": [ROLE[dept]],
                    "department": dept})
    return out


def baseline(n_accounts: int = 30, days: int = 4, seed: int = 1, per_hour: float = 3.0,
             start: float = T0) -> list[dict]:
    """Ordinary office work: reads of a few customers in business hours, some exports."""
    rng = random.Random(seed)
    docs: list[tuple[float, dict]] = []
    n = 0
    for d in range(days):
        for i in range(n_accounts):
            uid = f"u{i:03d}"
            dept = DEPTS[i % len(DEPTS)]
            ip = f"10.1.{i}.{rng.randint(2, 3)}"
            day0 = start + d * 86400
            docs.append((day0 + rng.uniform(0, 600), event(day0, uid, f"l{n}", "login", ip=ip)))
            n += 1
            for h in range(9):
                for _ in range(rng.randint(int(per_hour) - 1, int(per_hour) + 1)):
                    t = day0 + h * 3600 + rng.uniform(600, 3600)
                    res = rng.choice(RESOURCES[dept])
                    act = "export" if rng.random() < 0.03 else "read"
                    k = rng.randint(1, 3)
                    ids = tuple(f"c{rng.randint(0, 5000):05d}" for _ in range(k))
                    docs.append((t, event(t, uid, f"e{n}", act, resource=res,
                                          categories=CATS[dept], ids=ids, records=k, ip=ip,
                                          nbytes=rng.randint(500, 5000))))
                    n += 1
    docs.sort(key=lambda p: p[0])
    return [d for _, d in docs]


def insider_docs() -> list[dict]:
    """Two days of office work, then u004 at night: new address, 60 copies to a USB stick."""
    docs = baseline(n_accounts=30, days=3, seed=5)
    t = T0 + 2 * 86400 + 13 * 3600  # day 3, 22:00 JST
    for i in range(60):
        docs.append(event(t + i * 40, "u004", f"x{i}", "copy", resource="billing.payments",
                          categories=("payment", "identity", "health"),
                          ids=tuple(f"c9{i:03d}{k}" for k in range(20)), records=20,
                          ip="10.99.1.1", dest={"kind": "external_media"}))
    docs.sort(key=lambda d: d["@timestamp"])
    return docs


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_bytes(b"".join(msgspec.json.encode(d) + b"\n" for d in docs))
    return path


def make_engine(n_accounts: int = 30) -> Engine:
    engine = Engine(load_policy(None), Pseudonymizer(b"test-key-0123456789abcdef"), default_rules())
    for rec in directory_records(n_accounts):
        engine.apply_directory(msgspec.convert(rec, DirectoryRecord))
    return engine
