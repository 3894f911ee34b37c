"""The file sinks (JSONL, audit trail) write each alert once within a process too.

A send that the outbox timed out leaves its worker thread writing; the retry must wait for
it and skip what it wrote (not write a second line), count what it skipped in
``watchdog_sink_skipped_total{sink}``, and a write that failed half-way must leave no torn
line for the retry to glue an alert onto. Real files throughout; the slow disk is a gate in
the write.
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from pathlib import Path

import orjson
import pytest

from tests.daemon.helpers import wait_for
from tests.daemon.test_audit_sink import alert  # the same alert, numbered
from tests.services.exposition import metric_value
from watchdog.alerts.model import encode_alert
from watchdog.audit import verify
from watchdog.daemon.delivery import Delivery, RetryPolicy
from watchdog.daemon.logging import get_logger
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook
from watchdog.daemon.sinks import jsonl as jsonl_module
from watchdog.daemon.sinks.audit import AuditSink
from watchdog.daemon.sinks.jsonl import JsonlSink

FAST = RetryPolicy(0.01, 0.05)


def ids_in(path: Path) -> list[str]:
    return [orjson.loads(line)["alert_id"] for line in path.read_bytes().splitlines()]


def slow_jsonl_writes(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Every JSONL write waits for the returned gate (a disk that takes its time)."""
    gate = threading.Event()
    real = JsonlSink._write

    def slow(self: JsonlSink, data: bytes) -> None:
        gate.wait(10)
        real(self, data)

    monkeypatch.setattr(JsonlSink, "_write", slow)
    return gate


async def test_a_timed_out_jsonl_write_is_not_written_twice_on_retry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = JsonlSink(path, fsync=False)
    await sink.start()
    gate = slow_jsonl_writes(monkeypatch)
    alerts = [alert(i) for i in range(4)]
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):  # as the outbox bounds a send
            await sink.send(alerts)
    retry = asyncio.create_task(sink.send([*alerts, alert(4)]))  # waits for the first thread
    await asyncio.sleep(0.05)
    assert not retry.done()
    gate.set()
    await asyncio.wait_for(retry, 10)
    await sink.close()
    assert ids_in(path) == [a.alert_id for a in [*alerts, alert(4)]]


async def test_the_outbox_retry_skips_what_the_timed_out_write_wrote_and_counts_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = JsonlSink(path, fsync=False, timeout=0.05)
    await sink.start()
    metrics = Metrics()
    delivery = Delivery([sink], metrics, get_logger("test"), retry=FAST)
    skipped = metrics.sink_skipped.labels("jsonl")
    assert metric_value(skipped) == 0  # the series exists before the first skip
    gate = slow_jsonl_writes(monkeypatch)
    task = asyncio.create_task(delivery.outboxes[0].run())
    book = PartitionBook(0, 0)
    alerts = [alert(i) for i in range(4)]
    for i, a in enumerate(alerts):
        book.consumed(i + 1)
        delivery.submit(a, book, i, time.monotonic())
    try:
        errors = metrics.sink_errors.labels("jsonl")
        await wait_for(lambda: metric_value(errors) >= 2, what="the send timed out and retried")
        gate.set()  # the first thread writes the batch; the next retry finds it written
        await asyncio.wait_for(delivery.drained(), 10)
    finally:
        task.cancel()
        await sink.close()
    assert ids_in(path) == [a.alert_id for a in alerts]
    assert metric_value(skipped) == len(alerts)
    assert metric_value(metrics.sink_sent.labels("jsonl")) == len(alerts)
    assert book.safe() == len(alerts)  # the skipped alerts count as delivered


async def test_a_jsonl_write_that_failed_half_way_leaves_no_torn_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = JsonlSink(path, fsync=False)
    await sink.start()
    alerts = [alert(i) for i in range(3)]
    await sink.send(alerts[:1])
    real = os.write
    full = True

    def full_disk(fd: int, data: bytes | memoryview) -> int:
        if full:  # half the batch reaches the file, then the disk is full
            real(fd, bytes(data[:len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(jsonl_module.os, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        await sink.send(alerts[1:])
    full = False
    await sink.send(alerts[1:])  # the outbox's retry
    await sink.close()
    assert path.read_bytes() == b"".join(encode_alert(a) + b"\n" for a in alerts)


async def test_skipped_audit_alerts_are_counted_and_the_tail_is_read_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    sink = AuditSink(path, fsync=False)
    await sink.start()
    await sink.send([alert(i) for i in range(3)])
    await sink.close()

    from watchdog.audit import tail as tail_module
    from watchdog.audit import trail as trail_module
    from watchdog.daemon.sinks import recent as recent_module
    reads: list[int] = []
    real = tail_module.tail

    def counted(fd: int, size: int, n: int, **kw: int) -> tuple[int, list[bytes]]:
        reads.append(n)
        return real(fd, size, n, **kw)

    for module in (trail_module, recent_module):  # every reader of a tail
        monkeypatch.setattr(module, "tail", counted)
    sink = AuditSink(path, fsync=False)
    metrics = Metrics()
    Delivery([sink], metrics, get_logger("test"))  # wires the counter
    await sink.start()
    assert len(reads) == 1  # the chain's last line and the remembered ids from one read
    await sink.send([alert(i) for i in range(5)])  # a restart sends 0-2 again
    await sink.close()
    assert [d["alert_id"] for d in (orjson.loads(x)["alert"] for x in
                                    path.read_bytes().splitlines())] == [
        alert(i).alert_id for i in range(5)]
    assert metric_value(metrics.sink_skipped.labels("audit")) == 3
    assert verify(path, require_head=True).ok
