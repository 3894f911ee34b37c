"""The sink protocol: a destination that accepts a batch of alerts or raises.

A sink does no retrying of its own: :class:`~watchdog.daemon.delivery.Outbox` retries a failed
batch with exponential backoff and jitter, forever (alerts are never dropped), counting each
failure in ``watchdog_sink_errors_total{sink}``. A sink that delivers alert by alert raises
:class:`PartialDelivery` so that the alerts it did deliver are not sent twice, and counts them
in ``progress`` as it goes (0 at the start of each send): when the outbox's timeout cuts a send
short (a slow receiver), those count as delivered, and the retry goes on from the next one
rather than sending the batch's first alerts again and again, never getting past them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from watchdog.alerts.model import Alert


class PartialDelivery(Exception):
    """The first ``accepted`` alerts of the batch were delivered; the rest failed."""

    def __init__(self, accepted: int, cause: BaseException) -> None:
        super().__init__(f"{accepted} delivered, then: {cause!r}")
        self.accepted = accepted
        self.cause = cause


class Sink(Protocol):
    name: str  # the ``sink`` label: kafka, alertmanager, webhook, mqtt, jsonl, audit, memory
    timeout: float  # seconds one send() may take before it counts as failed

    async def start(self) -> None: ...

    async def send(self, alerts: Sequence[Alert]) -> None:
        """Deliver every alert or raise; alerts carry ``detected_at``."""
        ...

    async def close(self) -> None: ...
