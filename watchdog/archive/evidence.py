"""``watchdog evidence``: the facts one alert rests on, as a bundle of files with SHA256SUMS.

- ``alert.json``: the alert as archived.
- ``events.jsonl``: the access events it cites (``event_ids``), byte for byte as archived;
  ``references.json``: cited ids that are not access events (an obligation's record).
- ``directory.jsonl``, ``subjects.jsonl``, ``accounts.jsonl``: the state at the alert's time:
  every record effective at or before it of the accounts and subjects involved.
- ``policy.json``: the commitments the alert cites (its ``clauses``) and, with ``--policy``,
  the policy file itself with its SHA-256 (the version in force).
- ``audit.json``: with ``--audit-trail``, the trail's entry for the alert, the next entry's
  link to it, the head and the result of verifying the whole chain.
- ``summary.json``: who and what was affected (subjects, categories, countries,
  destinations, accounts, time span): the facts a 72-hour breach notice needs.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from watchdog.archive.reader import ArchiveQuery

_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


class EvidenceError(Exception):
    """The bundle cannot be made (alert not archived); ``str()`` is one line."""


def _jsonl(path: Path, raws: list[str]) -> None:
    path.write_text("".join(r + "\n" for r in raws), encoding="utf-8")


def _in(values: list[str]) -> str:
    return ", ".join("?" for _ in values) or "NULL"


def build(q: ArchiveQuery, alert_id: str, out: Path, *, policy: Path | None = None,
          audit_trail: Path | None = None) -> dict[str, Any]:
    """Write the bundle into ``out`` (created; must be empty); returns the summary."""
    rows = q.sql("SELECT raw, ts FROM alerts WHERE id = ? ORDER BY ts LIMIT 1", [alert_id])
    if not rows:
        raise EvidenceError(f"alert {alert_id} is not in the archive")
    alert_raw, at = str(rows[0][0]), rows[0][1]
    alert = orjson.loads(alert_raw)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise EvidenceError(f"{out}: not empty (a bundle is written into an empty directory)")
    (out / "alert.json").write_bytes(orjson.dumps(alert, option=_OPTS))
    cited = [str(e) for e in alert.get("event_ids", ())]
    events = q.sql(f"SELECT raw, id FROM events WHERE id IN ({_in(cited)}) "  # noqa: S608
                   "ORDER BY ts, id", list(cited))
    found = {str(r[1]) for r in events}
    _jsonl(out / "events.jsonl", [str(r[0]) for r in events])
    (out / "references.json").write_bytes(orjson.dumps(
        [e for e in cited if e not in found], option=_OPTS))
    docs = [orjson.loads(str(r[0])) for r in events]
    accounts = sorted({alert.get("user_id", "")} | {d["user"]["id"] for d in docs} - {""})
    subjects = sorted({s for d in docs for s in d.get("data", {}).get("subject_ids", ())})
    for ds, key, ids in (("directory", "user_id", accounts), ("accounts", "user_id", accounts),
                         ("subjects", "subject_id", subjects)):
        recs = q.sql(f"SELECT raw FROM {ds} WHERE {key} IN ({_in(ids)}) AND ts <= ? "  # noqa: S608
                     "ORDER BY ts, id", [*ids, at])
        _jsonl(out / f"{ds}.jsonl", [str(r[0]) for r in recs])
    pol: dict[str, Any] = {"clauses": alert.get("clauses", []), "rule": alert.get("rule")}
    if policy is not None:
        data = policy.read_bytes()
        (out / f"policy{policy.suffix or '.yaml'}").write_bytes(data)
        pol["policy_file"] = policy.name
        pol["policy_sha256"] = hashlib.sha256(data).hexdigest()
    (out / "policy.json").write_bytes(orjson.dumps(pol, option=_OPTS))
    if audit_trail is not None:
        (out / "audit.json").write_bytes(orjson.dumps(
            audit_proof(audit_trail, alert_id), option=_OPTS))
    summary = _summary(alert, docs, at, cited, found)
    (out / "summary.json").write_bytes(orjson.dumps(summary, option=_OPTS))
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
            for p in sorted(out.iterdir()) if p.is_file()]
    (out / "SHA256SUMS").write_text("".join(sums))
    return summary


def _summary(alert: dict[str, Any], docs: list[dict[str, Any]], at: datetime,
             cited: list[str], found: set[str]) -> dict[str, Any]:
    data = [d.get("data", {}) for d in docs]
    dests = [d.get("destination", {}) for d in docs]
    subject_ids = sorted({s for x in data for s in x.get("subject_ids", ())})
    counts = [x.get("subject_count", len(x.get("subject_ids", ()))) for x in data]
    times = sorted(d["@timestamp"] for d in docs)
    return {
        "alert_id": alert.get("alert_id"), "rule": alert.get("rule"),
        "severity": alert.get("severity"), "ts": alert.get("ts"),
        "accounts": sorted({d["user"]["id"] for d in docs}) or [alert.get("user_id")],
        "subjects": {"count": max(len(subject_ids), sum(counts)), "ids": subject_ids},
        "categories": sorted({c for x in data for c in x.get("categories", ())}),
        "resources": sorted({x["resource"] for x in data if x.get("resource")}),
        "purposes": sorted({x["purpose"] for x in data if x.get("purpose")}),
        "countries": sorted({d["country"] for d in dests if d.get("country")}),
        "destinations": sorted({"/".join(str(d.get(k)) for k in ("kind", "organization",
                                                                 "domain") if d.get(k))
                                for d in dests if d}),
        "first_event": times[0] if times else None, "last_event": times[-1] if times else None,
        "events_cited": len(cited), "events_in_archive": len(found),
        "alert_time": at.isoformat(),
    }


def audit_proof(path: Path, alert_id: str) -> dict[str, Any]:
    """The trail's line for the alert, the next line (whose ``prev`` is the SHA-256 of it),
    the head, and the verdict on the whole chain."""
    from watchdog.audit import verify

    entry: str | None = None
    following: str | None = None
    with path.open("rb") as f:
        for line in f:
            if entry is not None:
                following = line.decode().rstrip("\n")
                break
            if alert_id.encode() in line:
                doc = orjson.loads(line)
                if doc.get("alert", {}).get("alert_id") == alert_id:
                    entry = line.decode().rstrip("\n")
    head = path.with_name(path.name + ".head")
    result = verify(path)
    return {
        "trail": str(path), "entry": entry,
        "entry_sha256": hashlib.sha256(entry.encode()).hexdigest() if entry else None,
        "next_entry": following,
        "head": head.read_text().strip() if head.exists() else None,
        "chain_ok": result.ok, "chain_problem": result.problem,
    }
