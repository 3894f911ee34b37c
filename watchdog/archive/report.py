"""The answer to a right-of-access request: who touched this person's data, when, why, where.

Every access event naming the subject in ``data.subject_ids``, in time order; the subject's
register history (erasure, restriction, consent...); the alerts that involve the subject (by
pseudonym: alerts never carry the raw id); and, when an erasure was requested, when it took
effect and what touched the subject afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from watchdog.archive.datasets import subject_ids_of
from watchdog.archive.reader import ONCE, ArchiveQuery

EVENT_COLUMNS = ("ts", "id", "user_id", "action", "outcome", "resource", "categories",
                 "purpose", "dest_kind", "dest_organization", "dest_country", "dest_domain",
                 "legal_basis")


@dataclass
class SubjectReport:
    subject_pseudonym: str
    events: list[dict[str, Any]] = field(default_factory=list)
    register: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    erasure_effective: datetime | None = None

    @property
    def after_erasure(self) -> list[dict[str, Any]]:
        t = self.erasure_effective
        return [] if t is None else [e for e in self.events if e["ts"] >= t]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def subject_report(q: ArchiveQuery, subject_id: str, pseudonym: str, *,
                   first: datetime | None = None, last: datetime | None = None
                   ) -> SubjectReport:
    rep = SubjectReport(pseudonym)
    span, params = [], list[object]()
    if first is not None:
        span.append("ts >= ?")
        params.append(first)
    if last is not None:
        span.append("ts < ?")
        params.append(last)
    # the stored column; the rest of each row parsed from the documents of the rows found
    # only. Format-3 rows (``derived``: the current day's, until compaction stores their ids)
    # are candidates when their document holds the id's text or a JSON escape (without a
    # backslash a JSON string's value is its text, so this skips no match, and nearly every
    # other document), then read by the decoder's rules (:func:`.datasets.subject_ids_of`),
    # here: one scan of the files, which is the time of a day of small segments. Filtered,
    # then one row per id (:data:`ONCE`): the view ``events`` would number every row of the
    # range first (seconds over 10M events); copies of an id are one document
    where = ["((NOT derived AND list_contains(subject_ids, ?)) OR "
             "(derived AND (contains(raw, ?) OR contains(raw, '\\'))))", *span]
    sql = (f"SELECT {', '.join(EVENT_COLUMNS)}, CASE WHEN derived THEN raw END "  # noqa: S608
           f"FROM events_all WHERE {' AND '.join(where)} {ONCE} ORDER BY ts, id")
    for *row, lean in q.sql(sql, [subject_id, subject_id, *params]):
        if lean is None or subject_id in subject_ids_of(lean):
            rep.events.append(dict(zip(EVENT_COLUMNS, row, strict=True)))
    for ts, typ, raw in q.sql("SELECT ts, type, raw FROM subjects WHERE subject_id = ? "
                              "ORDER BY ts, type", [subject_id]):
        doc = orjson.loads(str(raw))
        entry = {"effective": ts, "type": typ}
        for k in ("purposes", "categories", "resources"):
            if k in doc:
                entry[k] = doc[k]
        rep.register.append(entry)
        if typ == "erasure_requested":
            rep.erasure_effective = ts
        elif typ == "cleared":
            rep.erasure_effective = None
    for ts, aid, rule, sev, uid, eids in q.sql(
            "SELECT ts, id, rule, severity, user_id, event_ids FROM alerts "
            "WHERE list_contains(pseudonyms, ?) ORDER BY ts, id", [pseudonym]):
        rep.alerts.append({"ts": ts, "alert_id": aid, "rule": rule, "severity": sev,
                           "user_id": uid, "event_ids": eids})
    return rep


def event_json(e: dict[str, Any], erasure: datetime | None) -> dict[str, Any]:
    """One line of ``--json``: the event, ``event_id`` its ``event.id``."""
    return {
        "event_id": e["id"], "ts": _iso(e["ts"]), "user_id": e["user_id"],
        "action": e["action"], "outcome": e["outcome"] or "success",
        "resource": e["resource"], "categories": e["categories"] or [],
        "purpose": e["purpose"], "legal_basis": e["legal_basis"],
        "destination": {"kind": e["dest_kind"], "organization": e["dest_organization"],
                        "country": e["dest_country"], "domain": e["dest_domain"]},
        "after_erasure": erasure is not None and e["ts"] >= erasure,
    }


def summary_json(rep: SubjectReport) -> dict[str, Any]:
    after = rep.after_erasure
    return {
        "subject_pseudonym": rep.subject_pseudonym, "events": len(rep.events),
        "register": [{**r, "effective": _iso(r["effective"])} for r in rep.register],
        "erasure": None if rep.erasure_effective is None else {
            "effective": _iso(rep.erasure_effective), "events_after": len(after),
            "non_delete_after": sum(1 for e in after if e["action"] != "delete")},
        "alerts": [{**a, "ts": _iso(a["ts"])} for a in rep.alerts],
    }


def render_table(rep: SubjectReport, subject_id: str) -> str:
    out = [f"Access report for subject {subject_id} (pseudonym {rep.subject_pseudonym})",
           f"{len(rep.events)} access event(s)", ""]
    head = ("time", "event id", "account", "action", "resource", "categories", "purpose",
            "destination")
    rows = [head]
    for e in rep.events:
        dest = "/".join(x for x in (e["dest_kind"], e["dest_organization"], e["dest_country"])
                        if x) or "-"
        rows.append((_iso(e["ts"]), e["id"], e["user_id"], e["action"], e["resource"] or "-",
                     ",".join(e["categories"] or []) or "-", e["purpose"] or "-", dest))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    for r in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    out += ["", "Register history:"]
    out += [f"  {_iso(r['effective'])}  {r['type']}"
            + "".join(f"  {k}={','.join(r[k])}" for k in ("purposes", "categories", "resources")
                      if k in r) for r in rep.register] or ["  (none)"]
    if rep.erasure_effective is not None:
        after = rep.after_erasure
        other = [e for e in after if e["action"] != "delete"]
        out += ["", f"Erasure requested, effective {_iso(rep.erasure_effective)}: "
                f"{len(after)} event(s) touched the subject afterwards, "
                f"{len(other)} of them not a delete"
                + ("" if not other else ": " + ", ".join(e["id"] for e in other[:20]))]
    out += ["", "Alerts involving the subject:"]
    out += [f"  {_iso(a['ts'])}  {a['alert_id']}  {a['rule']} ({a['severity']})  "
            f"{a['user_id']}" for a in rep.alerts] or ["  (none)"]
    return "\n".join(out) + "\n"
