"""/metrics, /healthz, /readyz, and systemd notification.

Every metric name the ops dashboards are built on is exposed (and lints clean with promtool
when it is installed); readiness tells why not; a daemon whose broker is away stays up, not
ready, and stops cleanly.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.daemon.helpers import World, wait_for
from tests.services.exposition import metric_value
from tests.services.procs import find_binary, free_port
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.deadletter import MemoryDeadLetters
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sinks.memory import MemorySink
from watchdog.daemon.sources.memory import MemorySource

METRICS = [
    "watchdog_events_total", "watchdog_events_invalid_total", "watchdog_alerts_total",
    "watchdog_event_to_alert_seconds", "watchdog_consumer_lag", "watchdog_sink_errors_total",
    "watchdog_accounts_tracked", "watchdog_build_info", "watchdog_sink_sent_total",
    "watchdog_sink_latency_seconds", "watchdog_queue_depth", "watchdog_state_entries",
    "watchdog_ready", "watchdog_watermark_timestamp_seconds",
    "watchdog_source_last_event_timestamp_seconds", "watchdog_alerts_suppressed_total",
    "watchdog_alerts_deduplicated_total", "watchdog_obligations_open",
    "watchdog_policy_reloads_total", "watchdog_model_info", "watchdog_model_loaded",
    "watchdog_anomaly_score", "watchdog_batch_seconds", "watchdog_events_late_total",
    "watchdog_events_duplicate_total", "watchdog_events_id_conflicts_total",
    "watchdog_state_dropped_total",
]


def memory_service(world: World, listen: str) -> Service:
    cfg = load_config(None, overrides={"listen": listen})

    def factory(p: Pipeline) -> MemorySource:
        src = MemorySource(p, 1)
        src.feed(0, list(world.events))
        return src

    return Service(cfg, world.engine(), sinks=[MemorySink()], dead_letters=MemoryDeadLetters(),
                   sources=[factory], kafka=False)


async def test_endpoints_and_every_metric(world: World, tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    svc = memory_service(world, listen)
    run = asyncio.create_task(svc.run())
    try:
        await wait_for(lambda: svc.pipeline.detector.processed == len(world.events),
                       what="processing")
        await wait_for(lambda: metric_value(svc.metrics.ready) == 1, what="ready gauge")
        async with httpx.AsyncClient(base_url=f"http://{listen}") as http:
            health = await http.get("/healthz")
            ready = await http.get("/readyz")
            metrics = await http.get("/metrics")
            missing = await http.get("/nope")
            post = await http.post("/metrics")
    finally:
        svc.request_stop()
        assert await asyncio.wait_for(run, 10) == 0
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert (missing.status_code, post.status_code) == (404, 405)
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    types = {ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE ")}
    assert [m for m in METRICS if m not in types] == []
    assert 'watchdog_build_info{detection="all",version="' in text
    assert 'watchdog_state_entries{state="directory"}' in text
    assert 'watchdog_queue_depth{queue="reorder"}' in text
    assert "watchdog_model_loaded 0.0" in text  # no model: 0, and no model_info series
    assert "watchdog_model_info{" not in text
    assert "_created" not in text
    promtool = find_binary("promtool")
    if promtool:
        lint = await asyncio.to_thread(
            subprocess.run, [promtool, "check", "metrics"], input=text, text=True,
            capture_output=True, timeout=30, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr


async def test_not_ready_while_the_broker_is_away_and_stops_cleanly(world: World) -> None:
    listen = f"127.0.0.1:{free_port()}"
    cfg = load_config(None, overrides={"listen": listen,
                                       "kafka.bootstrap": f"127.0.0.1:{free_port()}",
                                       "kafka.request_timeout_ms": 1000})
    svc = Service(cfg, world.engine())
    run = asyncio.create_task(svc.run())
    try:
        async with httpx.AsyncClient(base_url=f"http://{listen}") as http:
            async def answered() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 503
                except httpx.TransportError:
                    return False

            deadline = time.monotonic() + 20
            while not await answered():
                assert time.monotonic() < deadline, "no /readyz answer"
                await asyncio.sleep(0.05)
            body = (await http.get("/readyz")).json()
            assert body["status"] == "unavailable"
            assert "kafka broker unreachable" in body["reasons"]
            assert (await http.get("/healthz")).status_code == 200
    finally:
        t0 = time.monotonic()
        svc.request_stop()
        assert await asyncio.wait_for(run, 10) == 0
    assert time.monotonic() - t0 < 5


def test_liveness_fails_when_the_loop_stalls(world: World) -> None:
    svc = memory_service(world, f"127.0.0.1:{free_port()}")
    svc.tick_at -= 1000
    ok, detail = svc.alive()
    assert not ok
    assert detail == {"stalled": ["housekeeping"]}


async def test_systemd_ready_watchdog_and_stopping(world: World, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("watchdog.systemd")
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    got: list[str] = []

    def received() -> list[str]:
        while True:
            try:
                got.append(sock.recv(4096).decode())
            except BlockingIOError:
                return got

    svc = memory_service(world, f"127.0.0.1:{free_port()}")
    run = asyncio.create_task(svc.run())
    try:
        await wait_for(lambda: any("READY=1" in m for m in received()), what="READY=1")
        await wait_for(lambda: sum("WATCHDOG=1" in m for m in received()) >= 2,
                       what="WATCHDOG=1 pings")
    finally:
        svc.request_stop()
        assert await asyncio.wait_for(run, 10) == 0
        received()
        sock.close()
    assert any("STOPPING=1" in m for m in got)
