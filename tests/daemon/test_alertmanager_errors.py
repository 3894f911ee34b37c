"""An Alertmanager (or a proxy in front of it) answering an error with a body that never ends
does not hold delivery: the status is the answer, the first few KiB of the body give the
one-line reason (against a real local HTTP server, and the daemon with its configured
Alertmanager sink).

Before, the whole error body was read for a 200-character reason: an endless one was read
until the send's bound (2 x timeout_seconds) cut it, every retry alike, the body piling up in
memory meanwhile. The sends' timeouts here are far longer than the deadlines waited for, so
only an answer taken on its status passes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.daemon.helpers import ERROR_REASON, HookReceiver, World, wait_for
from tests.daemon.test_sinks import alert
from tests.services.exposition import metric_value
from watchdog.daemon.app import Service
from watchdog.daemon.config import AlertmanagerSink as Settings
from watchdog.daemon.config import load_config
from watchdog.daemon.deadletter import MemoryDeadLetters
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sinks.alertmanager import AlertmanagerSink
from watchdog.daemon.sinks.http_answer import ERROR_CHARS
from watchdog.daemon.sources.memory import MemorySource

TIMEOUT = 60.0  # of a send's reads: the endless body would be read for 2 x this
FAILURES = 3


async def test_an_endless_error_body_gives_its_first_line() -> None:
    async with HookReceiver(fail_first=1, endless_errors=True) as server:
        sink = AlertmanagerSink(Settings(url=f"http://127.0.0.1:{server.port}",
                                         timeout_seconds=TIMEOUT))
        try:
            with pytest.raises(httpx.HTTPStatusError) as failed:
                async with asyncio.timeout(10):  # not the send's timeout: it is 60 s a read
                    await sink.send([alert(1)])
            reason = str(failed.value)
            assert reason.startswith(f"alertmanager answered 500: {ERROR_REASON.decode()} xxx")
            assert len(reason) <= len("alertmanager answered 500: ") + ERROR_CHARS
            await sink.send([alert(2)])  # the next answer is a 200: delivered
        finally:
            await sink.close()
    assert [a["labels"]["alert_id"] for b in server.bodies for a in b] == [alert(2).alert_id]
    assert server.headers[0]["accept-encoding"] == "identity"


async def test_the_daemon_delivers_past_endless_error_bodies(world: World,
                                                              tmp_path: Path) -> None:
    async with HookReceiver(fail_first=FAILURES, endless_errors=True) as server:
        path = tmp_path / "watchdog.yaml"
        path.write_text(
            f"sinks: {{alertmanager: {{url: 'http://127.0.0.1:{server.port}', "
            f"timeout_seconds: {TIMEOUT}}}}}\n"
            "delivery: {retry_initial_seconds: 0.01, retry_max_seconds: 0.05}\n")
        cfg = load_config(str(path), env={})

        def source(p: Pipeline) -> MemorySource:
            src = MemorySource(p, 1)
            src.feed(0, list(world.events))
            return src

        svc = Service(cfg, world.engine(), sources=[source], dead_letters=MemoryDeadLetters(),
                      kafka=False, listen=False)
        run = asyncio.create_task(svc.run())
        try:
            await wait_for(lambda: svc.pipeline.detector.processed == len(world.events),
                           what="every event processed")
            await wait_for(lambda: svc.delivery.pending == 0, within=30,
                           what="every alert delivered past the endless error bodies")
        finally:
            svc.request_stop()
            assert await asyncio.wait_for(run, 20) == 0
    got = [a["labels"]["alert_id"] for b in server.bodies for a in b]
    assert sorted(got) == sorted(world.expected)
    assert server.requests == FAILURES + len(server.bodies)
    assert metric_value(svc.metrics.sink_errors.labels("alertmanager")) == FAILURES
    assert metric_value(svc.metrics.sink_sent.labels("alertmanager")) == len(world.expected)
