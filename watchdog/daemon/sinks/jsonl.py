"""Alerts appended to a JSONL file, one canonical alert document per line (as replay writes).

Each batch is written and flushed (and fsynced) before it counts as delivered.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from watchdog.alerts.model import Alert, encode_alert


class JsonlSink:
    name = "jsonl"

    def __init__(self, path: str | Path, *, timeout: float = 30.0, fsync: bool = True) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.fsync = fsync
        self._fd: int | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    async def send(self, alerts: Sequence[Alert]) -> None:
        data = b"".join(encode_alert(a) + b"\n" for a in alerts)
        await asyncio.to_thread(self._write, data)

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
