"""An in-memory sink for tests: keeps alerts; can be told to fail."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from watchdog.alerts.model import Alert


class SinkDown(ConnectionError):
    pass


class MemorySink:
    def __init__(self, name: str = "memory", *, timeout: float = 5.0) -> None:
        self.name = name
        self.timeout = timeout
        self.alerts: list[Alert] = []
        self.down = False  # while True every send fails
        self.fail_next = 0  # fail this many sends, then work
        self.attempts = 0
        self.changed = asyncio.Event()

    async def start(self) -> None:
        pass

    async def send(self, alerts: Sequence[Alert]) -> None:
        self.attempts += 1
        if self.down:
            raise SinkDown(f"{self.name} is down")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise SinkDown(f"{self.name} failed on purpose")
        self.alerts.extend(alerts)
        self.changed.set()

    async def close(self) -> None:
        pass

    @property
    def ids(self) -> set[str]:
        return {a.alert_id for a in self.alerts}
