"""Alerts to a generic webhook: one ``POST`` per alert, the alert document as JSON body.

Timeouts come from ``timeout_seconds``; a non-2xx answer or a network error fails the alert.
Retries (exponential backoff with jitter, forever) are the outbox's; the alerts of a batch
that were accepted before a failure, or before a batch took longer than ``4 x
timeout_seconds`` (a slow receiver), are not sent again (:class:`PartialDelivery`,
``progress``).
Receivers deduplicate on ``alert_id`` (at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from watchdog.alerts.model import Alert, encode_alert
from watchdog.daemon.config import WebhookSink as Settings
from watchdog.daemon.sinks.base import PartialDelivery
from watchdog.daemon.sinks.http_answer import BODY_BYTES, drain


class WebhookSink:
    name = "webhook"

    def __init__(self, s: Settings) -> None:
        self.url = s.url
        self.timeout = s.timeout_seconds * 4
        headers = {"Content-Type": "application/json", **s.headers}
        if s.token:
            headers["Authorization"] = f"Bearer {s.token}"
        self._client = httpx.AsyncClient(headers=headers, timeout=s.timeout_seconds)
        self.progress = 0

    async def start(self) -> None:
        pass

    async def send(self, alerts: Sequence[Alert]) -> None:
        self.progress = 0  # alerts of this send accepted so far (the outbox's timeout reads it)
        for i, a in enumerate(alerts):
            try:
                await self._post(encode_alert(a))
            except Exception as err:
                raise PartialDelivery(i, err) from err
            self.progress = i + 1

    async def _post(self, body: bytes) -> None:
        """One POST; the status is the answer. Of its body at most :data:`BODY_BYTES` are
        read (for the connection's reuse): a receiver answering with a large or endless
        body (a streaming endpoint) neither holds the send until it times out nor fills the
        memory."""
        async with self._client.stream("POST", self.url, content=body) as resp:
            if resp.status_code >= 300:
                raise httpx.HTTPStatusError(f"webhook answered {resp.status_code}",
                                            request=resp.request, response=resp)
            await drain(resp, BODY_BYTES)

    async def close(self) -> None:
        await self._client.aclose()
