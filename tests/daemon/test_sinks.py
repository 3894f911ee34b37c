"""Sinks and their delivery: retries with backoff, no double sends, timeouts, the mappings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from tests.daemon.helpers import HookReceiver, wait_for
from tests.services.exposition import metric_value
from watchdog.alerts.model import Alert, AlertSubjects, encode_alert, now_rfc3339
from watchdog.daemon.config import AlertmanagerSink as AMSettings
from watchdog.daemon.config import WebhookSink as WebhookSettings
from watchdog.daemon.delivery import Delivery, RetryPolicy
from watchdog.daemon.logging import get_logger
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook
from watchdog.daemon.sinks.alertmanager import to_alertmanager
from watchdog.daemon.sinks.base import PartialDelivery
from watchdog.daemon.sinks.jsonl import JsonlSink
from watchdog.daemon.sinks.webhook import WebhookSink

FAST = RetryPolicy(0.01, 0.05)


def alert(i: int, rule: str = "external_media") -> Alert:
    return Alert(alert_id=f"{rule}:{i:016x}", rule=rule, severity="critical",
                 ts="2026-11-20T00:15:02.123Z", user_id="e10042", event_ids=(f"ev-{i}",),
                 summary="Account e10042 wrote personal data to a USB stick",
                 subjects=AlertSubjects(3, ("s-1", "s-2", "s-3")),
                 clauses=("LiveSmart §10: no external media",), detected_at=now_rfc3339(),
                 labels={"dataset": "crm.audit"})


async def deliver(sinks: Sequence[object], alerts: list[Alert]) -> tuple[Delivery, Metrics]:
    metrics = Metrics()
    delivery = Delivery(sinks, metrics, get_logger("test"), retry=FAST)  # type: ignore[arg-type]
    tasks = [asyncio.create_task(box.run()) for box in delivery.outboxes]
    book = PartitionBook(0, 0)
    for i, a in enumerate(alerts):
        book.consumed(i + 1)
        delivery.submit(a, book, i, time.monotonic())
    try:
        await asyncio.wait_for(delivery.drained(), 20)
    finally:
        for t in tasks:
            t.cancel()
    assert delivery.pending == 0
    assert book.safe() == len(alerts)  # every offset released once its alert was accepted
    return delivery, metrics


async def test_webhook_retries_with_backoff_and_sends_each_alert_once() -> None:
    async with HookReceiver(fail_first=2) as hook:
        sink = WebhookSink(WebhookSettings(url=hook.url, token="s3cret",
                                           headers={"X-Team": "privacy"}))
        alerts = [alert(i) for i in range(3)]
        _, metrics = await deliver([sink], alerts)
        await sink.close()
    assert [b["alert_id"] for b in hook.bodies] == [a.alert_id for a in alerts]
    assert hook.requests == 5  # two failures, then three deliveries
    assert metric_value(metrics.sink_errors.labels("webhook")) == 2
    assert metric_value(metrics.sink_sent.labels("webhook")) == 3
    assert hook.headers[0]["authorization"] == "Bearer s3cret"
    assert hook.headers[0]["x-team"] == "privacy"
    sent = dict(hook.bodies[0])
    assert sent.pop("detected_at")  # stamped when the alert was handed to delivery
    expected = orjson.loads(encode_alert(alerts[0]))
    expected.pop("detected_at")
    assert sent == expected  # the contract's alert document


async def test_webhook_times_out() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(30)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = WebhookSink(WebhookSettings(url=f"http://127.0.0.1:{port}/", timeout_seconds=0.2))
    t0 = time.monotonic()
    try:
        with pytest.raises(PartialDelivery) as err:
            await sink.send([alert(0)])
    finally:
        await sink.close()
        server.close()
    assert err.value.accepted == 0
    assert time.monotonic() - t0 < 5


class Flaky:
    """Accepts two alerts of the first batch, then fails once; then works."""

    name = "flaky"
    timeout = 5.0

    def __init__(self) -> None:
        self.got: list[str] = []
        self.failed = False

    async def send(self, alerts: Sequence[Alert]) -> None:
        if not self.failed and len(alerts) > 2:
            self.failed = True
            self.got.extend(a.alert_id for a in alerts[:2])
            raise PartialDelivery(2, ConnectionError("reset"))
        self.got.extend(a.alert_id for a in alerts)


async def test_a_partial_failure_resends_only_the_rest() -> None:
    sink = Flaky()
    alerts = [alert(i) for i in range(5)]
    _, metrics = await deliver([sink], alerts)
    assert sink.got == [a.alert_id for a in alerts]
    assert metric_value(metrics.sink_errors.labels("flaky")) == 1


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    step = RetryPolicy(0.1, 1.0).delays()
    delays = [step() for _ in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert 0.1 <= delays[1] <= 0.2
    assert all(0.5 <= d <= 1.0 for d in delays[5:])


def test_alertmanager_mapping() -> None:
    a = alert(7)
    doc = to_alertmanager(a, 3600, "http://watchdog.example/")
    assert doc["labels"] == {"alertname": "external_media", "rule": "external_media",
                             "severity": "critical", "service": "watchdog",
                             "alert_id": a.alert_id, "dataset": "crm.audit"}
    notes = doc["annotations"]
    assert notes["user_id"] == "e10042"  # the account: an annotation, never a label
    assert notes["alert_id"] == a.alert_id
    assert notes["clauses"] == "LiveSmart §10: no external media"
    assert notes["summary"] == a.summary
    assert doc["startsAt"] == a.detected_at
    assert doc["endsAt"] > doc["startsAt"]
    assert doc["generatorURL"] == "http://watchdog.example/"
    AMSettings(url="http://127.0.0.1:9093")  # the settings type accepts a bare URL


async def test_jsonl_sink_appends_canonical_lines(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "out" / "alerts.jsonl")
    await sink.start()
    alerts = [alert(i) for i in range(3)]
    await sink.send(alerts[:2])
    await sink.send(alerts[2:])
    await sink.close()
    lines = (tmp_path / "out" / "alerts.jsonl").read_bytes().splitlines()
    assert lines == [encode_alert(a) for a in alerts]


async def test_an_alert_waits_for_every_sink() -> None:
    slow, fast = Flaky(), Flaky()
    slow.failed = fast.failed = True  # both healthy
    gate = asyncio.Event()
    original = slow.send

    async def gated(alerts: Sequence[Alert]) -> None:
        await gate.wait()
        await original(alerts)

    slow.send = gated  # type: ignore[method-assign]
    metrics = Metrics()
    delivery = Delivery([slow, fast], metrics, get_logger("test"), retry=FAST)  # type: ignore[list-item]
    tasks = [asyncio.create_task(box.run()) for box in delivery.outboxes]
    book = PartitionBook(0, 0)
    book.consumed(1)
    delivery.submit(alert(0), book, 0, time.monotonic())
    try:
        await wait_for(lambda: fast.got == [alert(0).alert_id], what="the fast sink")
        assert book.safe() == 0  # not committable while one sink has not accepted it
        gate.set()
        await asyncio.wait_for(delivery.drained(), 5)
        assert book.safe() == 1
    finally:
        for t in tasks:
            t.cancel()
