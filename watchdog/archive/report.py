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

from watchdog.archive.datasets import EVENT_VIEW
from watchdog.archive.reader import ONCE, ArchiveQuery
from watchdog.decode import Decoder, Rejection
from watchdog.events import AccessEvent, check_times

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


# Which events name the subject. Segments store the decoded event's subject ids, but those of
# format 2 (watchdog.archive.layout) do not: for them DuckDB picks candidates from the
# document and the daemon's own decoder decides, as it did when it archived them. Exact, not
# a guess: a document with no backslash holds every string as it is, so one naming the
# subject contains ``"<id>"`` (a substring search, no JSON parsed); a document with a
# backslash (escapes) is parsed, and is a candidate if its first ``data.subject_ids`` names
# the subject, if it repeats a key on the way (the decoder takes the last of repeated keys,
# DuckDB the first) or if DuckDB cannot parse it.
_NAMES = (  # over ``events_stored``: ``subject_ids`` as stored (null in format 2)
    "(subject_ids IS NOT NULL AND list_contains(subject_ids, $subject))"
    " OR (subject_ids IS NULL AND (contains(raw, $needle) OR (contains(raw, '\\')"
    " AND COALESCE(TRY("
    "list_contains(CAST(json_extract(raw, '$.data.subject_ids') AS VARCHAR[]), $subject)"
    " OR len(json_keys(raw)) <> len(list_distinct(json_keys(raw)))"
    " OR len(json_keys(raw, '$.data')) <> len(list_distinct(json_keys(raw, '$.data')))),"
    " true))))")
_decoder: Decoder[AccessEvent] = Decoder(AccessEvent, check=check_times)


def _needle(subject_id: str) -> str | None:
    """``"<id>"``, as a document without escapes holds it; None when JSON must escape a
    character of it (a document naming it then has a backslash)."""
    if any(c in '"\\' or c < " " for c in subject_id):
        return None
    return f'"{subject_id}"'


def names(raw: str, subject_id: str) -> bool:
    """Does the document name the subject in ``data.subject_ids``, as the daemon decodes it?"""
    ev = _decoder.decode(raw.encode())
    if not isinstance(ev, Rejection):
        return subject_id in ev.data.subject_ids
    try:  # not an event the daemon would take (written by hand?): the JSON as it is
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    data = doc.get("data") if isinstance(doc, dict) else None
    ids = data.get("subject_ids") if isinstance(data, dict) else None
    return isinstance(ids, list) and subject_id in ids


def subject_report(q: ArchiveQuery, subject_id: str, pseudonym: str, *,
                   first: datetime | None = None, last: datetime | None = None
                   ) -> SubjectReport:
    rep = SubjectReport(pseudonym)
    # the rest is parsed from the documents of the rows found only
    where = [f"({_NAMES})" if q.lean_events else "list_contains(subject_ids, $subject)"]
    params: dict[str, object] = {"subject": subject_id}
    if q.lean_events:
        params["needle"] = _needle(subject_id)
    if first is not None:
        where.append("ts >= $first")
        params["first"] = first
    if last is not None:
        where.append("ts < $last")
        params["last"] = last
    # filtered, then one row per id (:data:`ONCE`): the view ``events`` would number every
    # row of the range first (seconds over 10M events); copies of an id are one document.
    # Filtered below the query columns by hand: DuckDB did not push this filter through
    # ``events_all``'s projection, and parsed every row's JSON (135 s over 10M events)
    found = f"(SELECT * FROM events_stored WHERE {' AND '.join(where)} {ONCE})"  # noqa: S608
    sql = (f"SELECT {', '.join(EVENT_COLUMNS)}, "  # noqa: S608 (fixed names)
           "CASE WHEN stored_subject_ids IS NULL THEN raw END "
           f"FROM ({EVENT_VIEW.format(source=found)}) ORDER BY ts, id")
    rep.events = [dict(zip(EVENT_COLUMNS, r, strict=False)) for r in q.con.execute(sql, params)
                  .fetchall() if r[-1] is None or names(r[-1], subject_id)]
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
