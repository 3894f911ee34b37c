"""Alerts appended to a JSONL file, one canonical alert document per line (as replay writes).

Each batch is written and flushed (and fsynced) before it counts as delivered. A write that
fails (a full disk) is cut back to where it began, so that no torn line is left for the retry
to glue an alert onto.

One line per alert (:mod:`~watchdog.daemon.sinks.written`): the writes run in a worker thread,
one at a time; a send that timed out leaves its thread writing, and the retry waits for it and
skips what it wrote. The sink remembers the ids of the last 10,000 alerts it wrote, seeded at
start from the file's last lines (:mod:`~watchdog.daemon.sinks.recent`, read from the end; a
torn last line is left out, and ended so the next alert starts a line of its own), and skips
an alert it already holds, counted as delivered (and in ``watchdog_sink_skipped_total``). Such
an alert is one sent again after a restart: a stop mid-stream leaves the reorder buffer
uncommitted, and the alerts raised on arrival of those events come again with the same
``alert_id``. Each batch is written under an exclusive lock of the file (``flock``): the rules
and the anomaly services may share one file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

from watchdog.alerts.model import Alert, encode_alert
from watchdog.daemon.sinks.recent import REMEMBER, tail_alert_ids
from watchdog.daemon.sinks.written import WrittenOnce


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    """The file locked for one batch: another process appending to it (the anomaly service
    beside the rules service, same configuration) neither interleaves with a batch written in
    several calls nor loses lines to a failed batch's cut back to its start."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class JsonlSink:
    name = "jsonl"

    def __init__(self, path: str | Path, *, timeout: float = 30.0, fsync: bool = True) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.fsync = fsync
        self._fd: int | None = None
        self.written = WrittenOnce(REMEMBER)

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.written.seed(await asyncio.to_thread(tail_alert_ids, self.path, REMEMBER))
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        await asyncio.to_thread(self._end_torn_line)

    def _end_torn_line(self) -> None:
        """A torn last line (a crash mid-write) is ended, so the next alert is a line of its
        own rather than glued to it."""
        assert self._fd is not None
        with _locked(self._fd):
            size = os.fstat(self._fd).st_size
            if size and os.pread(self._fd, 1, size - 1) != b"\n":
                self._write_locked(b"\n")

    async def send(self, alerts: Sequence[Alert]) -> None:
        if self._fd is None:
            raise ConnectionError(f"{self.path}: not open")
        await self.written.run(partial(self._append, alerts))

    def _append(self, alerts: Sequence[Alert]) -> None:
        """In the worker thread: the alerts not written yet (by an earlier send that timed
        out, or before a restart), then remembered."""
        new: dict[str, Alert] = {}
        for a in alerts:
            if not self.written.holds(a.alert_id):
                new.setdefault(a.alert_id, a)
        if new:
            self._write(b"".join(encode_alert(a) + b"\n" for a in new.values()))
            self.written.wrote(new)
        self.written.skipped(len(alerts) - len(new))

    def _write(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            raise OSError(f"{self.path}: not open")
        with _locked(fd):
            self._write_locked(data)

    def _write_locked(self, data: bytes) -> None:
        fd = self._fd
        assert fd is not None
        size = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view):]
            if self.fsync:
                os.fsync(fd)
        except OSError:
            # no torn line left behind: the retry appends from the old end
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise

    async def close(self) -> None:
        await self.written.settle()  # a timed-out write still running owns the descriptor
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
