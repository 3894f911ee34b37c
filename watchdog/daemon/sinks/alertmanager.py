"""Alerts to Alertmanager's v2 API (``POST /api/v2/alerts``).

Mapping of a watchdog alert:

- labels: ``alertname`` = ``rule`` = the rule id, ``severity``, ``service="watchdog"``,
  ``alert_id``, and ``dataset`` when the alert has one. Alertmanager identifies an alert by its
  label set, so ``alert_id`` (a hash: no personal data) must be a label, or every alert of a
  rule would merge into one. Labels never carry a user id or subject id.
- annotations: ``title`` (a sentence: account, dataset, the clause broken, the rule),
  ``summary``, ``clauses`` (joined by newlines), ``alert_id``, ``user_id`` (the staff account,
  kept out of labels), ``event_ids``, ``subjects`` (count), ``pseudonyms`` (the subjects'
  keyed-hash pseudonyms, comma-separated), ``ts`` (event time), ``runbook_url`` (an anchor of
  the README; Alertmanager's template makes it absolute from one base URL).
- ``startsAt`` = ``detected_at``; ``endsAt`` = ``startsAt`` + ``resolve_after_seconds``: how
  long Alertmanager holds the violation (for inhibiting the Prometheus backstop and for
  de-duplicating a redelivery). A violation is an event, not a condition: the shipped
  receivers never notify its end (``send_resolved: false``); a person closes the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from watchdog.alerts.model import Alert, now_rfc3339
from watchdog.alerts.title import alert_title
from watchdog.daemon.config import AlertmanagerSink as Settings
from watchdog.daemon.sinks.http_answer import drain, error_line

#: the README's entry on what to do with a violation (acknowledge, silence, exception)
RUNBOOK = "README.md#runbook-violation"


def to_alertmanager(a: Alert, resolve_after: float, generator_url: str | None = None
                    ) -> dict[str, Any]:
    starts = a.detected_at or now_rfc3339()
    begin = datetime.fromisoformat(starts.replace("Z", "+00:00"))
    labels = {"alertname": a.rule, "rule": a.rule, "severity": a.severity,
              "service": "watchdog", "alert_id": a.alert_id}
    if a.labels.get("dataset"):
        labels["dataset"] = a.labels["dataset"]
    doc: dict[str, Any] = {
        "labels": labels,
        "annotations": {
            "title": alert_title(a),
            "summary": a.summary,
            "clauses": "\n".join(a.clauses),
            "alert_id": a.alert_id,
            "user_id": a.user_id,
            "event_ids": ",".join(a.event_ids),
            "subjects": str(a.subjects.count),
            "pseudonyms": ",".join(a.subjects.pseudonyms),
            "ts": a.ts,
            "runbook_url": RUNBOOK,
        },
        "startsAt": starts,
        "endsAt": (begin + timedelta(seconds=resolve_after)).isoformat().replace("+00:00", "Z"),
    }
    if generator_url:
        doc["generatorURL"] = generator_url
    return doc


class AlertmanagerSink:
    name = "alertmanager"

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.timeout = s.timeout_seconds * 2
        # no content coding: an error's body is read raw, in part (sinks.http_answer)
        headers = {"Accept-Encoding": "identity"}
        if s.token:
            headers["Authorization"] = f"Bearer {s.token}"
        self._client = httpx.AsyncClient(base_url=s.url.rstrip("/"), headers=headers,
                                         timeout=s.timeout_seconds)

    async def start(self) -> None:
        pass

    async def send(self, alerts: Sequence[Alert]) -> None:
        body = [to_alertmanager(a, self.s.resolve_after_seconds, self.s.generator_url)
                for a in alerts]
        # the status is the answer: of an error's body the first few KiB are read for its
        # one-line reason, of a success's at most 64 KiB (a large or endless body, e.g. from a
        # proxy in front of Alertmanager, neither holds the send nor fills the memory)
        async with self._client.stream("POST", "/api/v2/alerts", json=body) as resp:
            if resp.status_code >= 300:
                raise httpx.HTTPStatusError(f"alertmanager answered {resp.status_code}: "
                                            f"{await error_line(resp)}", request=resp.request,
                                            response=resp)
            await drain(resp)

    async def close(self) -> None:
        await self._client.aclose()
