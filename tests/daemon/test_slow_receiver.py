"""A slow webhook receiver does not stall alert delivery (the daemon, its memory source and
its configured webhook sink, against a real local HTTP receiver), nor does one that answers
with a body that never ends (a streaming endpoint): the status is the answer.

The outbox bounds one send to ``4 x timeout_seconds``; a send posts its batch one alert at a
time. When alerts piled up (the receiver was away) and each POST takes a while, a batch takes
longer than that bound: the alerts the receiver took before the timeout must count as
delivered, or every retry posts the batch's first alerts again and never gets past them (the
daemon's alerts stay pending forever, its offsets uncommitted, consumption paused).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from tests.daemon.helpers import HookReceiver, World, wait_for
from tests.services.exposition import metric_value
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.deadletter import MemoryDeadLetters
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.memory import MemorySource

TIMEOUT = 0.1  # per POST; the outbox's bound on a send is 4x: 0.4 s
DELAY = 0.05  # each POST takes this long: ~8 alerts per send, fewer than the batch


def webhook_service(world: World, tmp_path: Path, url: str, timeout: float) -> Service:
    cfg_path = tmp_path / "watchdog.yaml"
    cfg_path.write_text(
        f"sinks: {{webhook: {{url: '{url}', timeout_seconds: {timeout}}}}}\n"
        "delivery: {retry_initial_seconds: 0.01, retry_max_seconds: 0.05}\n")
    cfg = load_config(str(cfg_path), env={})

    def factory(p: Pipeline) -> MemorySource:
        src = MemorySource(p, 1)
        src.feed(0, list(world.events))
        return src

    return Service(cfg, world.engine(), dead_letters=MemoryDeadLetters(),
                   sources=[factory], kafka=False, listen=False)


async def test_a_batch_longer_than_the_send_timeout_is_delivered_in_parts(
        world: World, tmp_path: Path) -> None:
    n = len(world.expected)
    assert n * DELAY > 2 * 4 * TIMEOUT, "the batch must outlast the bound"
    gate = asyncio.Event()
    async with HookReceiver(delay=DELAY, gate=gate) as hook:
        svc = webhook_service(world, tmp_path, hook.url, TIMEOUT)
        run = asyncio.create_task(svc.run())
        try:
            # the receiver answers nothing until every alert waits for it (one batch)
            await wait_for(lambda: svc.delivery.pending == n, within=30,
                           what="every alert waiting for the receiver")
            gate.set()
            await wait_for(lambda: svc.delivery.pending == 0, within=30,
                           what="every alert delivered")
        finally:
            svc.request_stop()
            assert await asyncio.wait_for(run, 20) == 0
    received = Counter(b["alert_id"] for b in hook.bodies)
    assert set(received) == set(world.expected)
    errors = metric_value(svc.metrics.sink_errors.labels("webhook"))
    assert errors >= 1  # the bound was hit: the batch went in parts
    # at least once: only an alert in flight when a send was cut short may come twice
    assert sum(received.values()) - n <= errors
    assert metric_value(svc.metrics.sink_sent.labels("webhook")) == n


async def test_an_answer_whose_body_never_ends_is_not_waited_for(
        world: World, tmp_path: Path) -> None:
    async with HookReceiver(endless=True) as hook:
        svc = webhook_service(world, tmp_path, hook.url, 0.5)
        run = asyncio.create_task(svc.run())
        try:
            await wait_for(lambda: svc.pipeline.detector.processed == len(world.events),
                           what="every event processed")
            await wait_for(lambda: svc.delivery.pending == 0, within=30,
                           what="every alert delivered, the answers' bodies left unread")
        finally:
            svc.request_stop()
            assert await asyncio.wait_for(run, 20) == 0
    assert {b["alert_id"] for b in hook.bodies} == set(world.expected)
    assert metric_value(svc.metrics.sink_errors.labels("webhook")) == 0
