"""Alerts appended to a JSONL file, one canonical alert document per line (as replay writes).

Each batch is written and flushed (and fsynced) before it counts as delivered.

One line per alert: the sink remembers the ids of the last 10,000 alerts it wrote, seeded at
start from the file's last lines (:mod:`~watchdog.daemon.sinks.recent`, read from the end; a
torn last line is left out, and ended so the next alert starts a line of its own), and skips
an alert it already holds, counted as delivered. Such an alert is one sent again after a
restart: a stop mid-stream leaves the reorder buffer uncommitted, and the alerts raised on
arrival of those events come again with the same ``alert_id``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from watchdog.alerts.model import Alert, encode_alert
from watchdog.daemon.sinks.recent import REMEMBER, RecentIds, tail_alert_ids


class JsonlSink:
    name = "jsonl"

    def __init__(self, path: str | Path, *, timeout: float = 30.0, fsync: bool = True) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.fsync = fsync
        self._fd: int | None = None
        self._written = RecentIds(REMEMBER)  # touched on the event loop only

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._written.extend(await asyncio.to_thread(tail_alert_ids, self.path, REMEMBER))
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        await asyncio.to_thread(self._end_torn_line)

    def _end_torn_line(self) -> None:
        """A torn last line (a crash mid-write) is ended, so the next alert is a line of its
        own rather than glued to it."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            self._write(b"\n")

    async def send(self, alerts: Sequence[Alert]) -> None:
        new: dict[str, Alert] = {}
        for a in alerts:
            if a.alert_id not in self._written:
                new.setdefault(a.alert_id, a)
        if not new:
            return
        data = b"".join(encode_alert(a) + b"\n" for a in new.values())
        await asyncio.to_thread(self._write, data)
        self._written.extend(new)

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            raise OSError(f"{self.path}: not open")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        if self.fsync:
            os.fsync(self._fd)

    async def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
