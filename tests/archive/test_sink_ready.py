"""DaemonArchive.ready: the daemon's start waits for the store and for the state records read
at start to be written (so the stream's first flush is its own), but never for long, and not
at all when the store cannot be opened."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import structlog

from watchdog.archive.layout import DIRECTORY
from watchdog.archive.manifest import contents
from watchdog.archive.store import open_store
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.settings import Archive, Topics
from watchdog.daemon.sinks.archive import DaemonArchive
from watchdog.events import DirectoryRecord


def _record(user: str) -> tuple[DirectoryRecord, bytes]:
    raw = b'{"user_id":"%s","status":"active","effective":"2026-01-02T00:00:00Z"}' % (
        user.encode())
    return msgspec.json.decode(raw, type=DirectoryRecord), raw


async def test_ready_writes_the_state_records_before_returning(tmp_path: Path) -> None:
    # flush_seconds is an hour: without ready() the records would wait for it
    sink = DaemonArchive(Archive(location=str(tmp_path / "a"), writer="w", flush_seconds=3600),
                         Topics(), Metrics(), structlog.get_logger())
    for user in ("u1", "u2", "u3"):
        sink.put_record(Topics().directory, *_record(user))
    task = asyncio.create_task(sink.run())
    try:
        await sink.ready()
        assert sink.pending == 0
        (seg,) = contents(open_store(str(tmp_path / "a"))).of(DIRECTORY)
        assert seg.rows == 3
    finally:
        task.cancel()


async def test_ready_does_not_wait_for_a_store_that_cannot_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    sink = DaemonArchive(Archive(location=str(blocker / "a"), writer="w", flush_seconds=3600),
                         Topics(), Metrics(), structlog.get_logger())
    sink.put_record(Topics().directory, *_record("u1"))
    task = asyncio.create_task(sink.run())
    try:
        t0 = time.monotonic()
        await sink.ready()
        assert time.monotonic() - t0 < 5  # not READY_SECONDS
        assert sink.writer is None
        assert sink.pending == 1  # kept for the next attempt
    finally:
        task.cancel()


async def test_alerts_pending_counts_the_alerts_not_yet_in_a_segment(tmp_path: Path) -> None:
    """What the model's saves wait for (daemon/model_state.py): an alert the archive holds
    but has not written would be lost to it by a crash after a save that holds its events."""
    from tests.daemon.helpers import wait_for
    from watchdog.alerts.model import Alert

    def alert(alert_id: str) -> Alert:
        return Alert(alert_id=alert_id, rule="anomaly", severity="medium",
                     ts="2026-11-20T00:00:00.000Z", user_id="u1", event_ids=("ev-1",),
                     summary="unlike itself")

    sink = DaemonArchive(Archive(location=str(tmp_path / "a"), writer="w", flush_seconds=3600),
                         Topics(), Metrics(), structlog.get_logger())
    sink.put_alert(alert("anomaly:u1:1"), None, -1)
    sink.put_alert(alert("anomaly:u1:2"), None, -1)
    sink.put_record(Topics().directory, *_record("u1"))
    assert sink.alerts_pending == 2
    task = asyncio.create_task(sink.run())
    try:
        sink.quiet()
        await wait_for(lambda: sink.pending == 0, 10, "the segment written")
        assert sink.alerts_pending == 0
    finally:
        task.cancel()
