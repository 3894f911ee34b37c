"""The daemon as a real process in the property tests: started, watched through its /metrics
and /readyz, stopped by PID; waiting for conditions, never sleeping blindly."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec
import yaml
from aiokafka import AIOKafkaProducer

from tests.fuzz._live_broker import KEY, Case
from tests.services.exposition import samples, total
from tests.services.fixtures import unique_name
from tests.services.procs import ManagedProcess

ROOT = Path(__file__).resolve().parents[2]
# an invalid document of another kind than the chunks' sentinels (not JSON): what was sent
# before it on the same MQTT session was read once it is counted
BARRIER = b"{}"
IDLE = 1.0  # idle_after_seconds: a partition quiet this long stops holding the watermark
# a group that joins and notices a member gone quickly, commits and polls often
FAST_GROUP: dict[str, Any] = {
    "heartbeat_interval_ms": 300, "session_timeout_ms": 1500, "idle_after_seconds": IDLE,
    "commit_interval_seconds": 0.2, "poll_timeout_ms": 100}


def write_live_config(tmp: Path, bs: str, port: int, model: Path, *, state_every: float,
                      kafka: dict[str, Any], detection: dict[str, Any],
                      mqtt: dict[str, Any] | None = None,
                      sinks: dict[str, Any] | None = None) -> tuple[Path, dict[str, str]]:
    """``tmp/watchdog.yaml`` for a live anomaly test's daemon: the model, its state saved every
    ``state_every`` s, topics of their own (returned), ``kafka``/``detection``/``mqtt`` as
    given (a group of its own added), alerts to ``tmp/alerts.jsonl`` unless ``sinks``."""
    topics = {name: unique_name(name.replace("_", "-"))
              for name in ("access_logs", "directory", "subjects", "accounts", "alerts", "dlq")}
    doc: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "model": str(model),
        "model_state": {"path": str(tmp / "anomaly.state"), "every_seconds": state_every},
        "kafka": {"bootstrap": bs, "group": unique_name("g"), "request_timeout_ms": 10000,
                  **kafka},
        "topics": topics,
        "detection": detection,
        "sinks": sinks or {"jsonl": {"path": str(tmp / "alerts.jsonl")}},
        "delivery": {"retry_initial_seconds": 0.05, "retry_max_seconds": 0.5},
        "shutdown_timeout_seconds": 10,
    }
    if mqtt is not None:
        doc["mqtt"] = mqtt
    path = tmp / "watchdog.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, topics


async def wait_until(cond: Callable[[], Awaitable[bool]], what: str, proc: ManagedProcess,
                     within: float = 60.0) -> None:
    """Poll ``cond`` (no blind sleep); fail at the deadline or when the daemon died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await cond():
        if not proc.running:
            raise AssertionError(f"the daemon exited ({proc.returncode}) waiting for {what}\n"
                                 f"{proc.log_tail()}")
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}\n"
                                 f"{proc.log_tail()}")
        await asyncio.sleep(0.05)


class Daemon:
    """``watchdog run`` as a subprocess, and what its /metrics and /readyz say."""

    def __init__(self, cfg: Path, port: int, args: Sequence[str] = (),
                 log_path: Path | None = None) -> None:
        """``args``: more of ``watchdog run``'s (``--only anomaly``); ``log_path``: the log of
        every start (else a temporary file)."""
        env = {**os.environ, "WATCHDOG_PSEUDONYM_KEY": KEY.decode()}
        self.proc = ManagedProcess("watchdog", [sys.executable, "-m", "watchdog", "run",
                                                "--config", str(cfg), *args],
                                   env=env, cwd=ROOT, stop_timeout=15.0, log_path=log_path)
        self.base = f"http://127.0.0.1:{port}"
        self.http = httpx.AsyncClient(timeout=5.0)

    async def start(self, partitions: int | None) -> None:
        """Start and wait until ready (with ``partitions`` Kafka partitions assigned)."""
        self.proc.start()

        async def ready() -> bool:
            try:
                r = await self.http.get(f"{self.base}/readyz")
            except httpx.HTTPError:
                return False
            return r.status_code == 200 and (
                partitions is None or len(r.json().get("partitions", [])) == partitions)

        await wait_until(ready, "the daemon ready with every partition", self.proc)

    async def metrics(self) -> dict[str, float]:
        return samples((await self.http.get(f"{self.base}/metrics")).text)

    async def total(self, name: str) -> float:
        return total(await self.metrics(), name)

    async def read_to(self, n: float, what: str) -> None:
        """Until ``n`` sentinels (invalid documents) were read: what was sent before is in."""
        async def read() -> bool:
            return await self.total("watchdog_events_invalid_total") >= n

        await wait_until(read, what, self.proc)

    async def read_barrier(self, what: str) -> None:
        """Until the :data:`BARRIER` sent since this process started was read."""
        async def read() -> bool:
            m = await self.metrics()
            return m.get('watchdog_events_invalid_total{reason="missing_field"}', 0) >= 1

        await wait_until(read, what, self.proc)

    async def flushed(self, what: str) -> None:
        """Until the reorder buffer is empty (every partition idle: the buffer released)."""
        async def empty() -> bool:
            m = await self.metrics()
            return m.get('watchdog_queue_depth{queue="reorder"}', 1) == 0

        await wait_until(empty, what, self.proc)

    async def idle(self, partitions: int, what: str) -> None:
        """Until every partition is idle (/readyz says so): a SIGTERM then processes the
        reorder buffer, the events held ahead of the present too, and commits every offset
        (before, it leaves the buffer for the next start)."""
        async def idle() -> bool:
            try:
                r = await self.http.get(f"{self.base}/readyz")
            except httpx.HTTPError:
                return False
            return len(r.json().get("idle", [])) == partitions

        await wait_until(idle, what, self.proc)

    async def close(self) -> None:
        await self.http.aclose()
        self.proc.stop(kill=True)


async def produce_state(producer: AIOKafkaProducer, case: Case, topics: dict[str, str]) -> None:
    futures = []
    for d in case.sc["directory"]:
        futures.append(await producer.send(topics["directory"], _json(d),
                                           key=str(d["user_id"]).encode()))
    for s in case.sc["subjects"]:
        futures.append(await producer.send(topics["subjects"], _json(s),
                                           key=f"{s['subject_id']}/{s['type']}".encode()))
    await asyncio.gather(*futures)


def _json(doc: Any) -> bytes:
    return msgspec.json.encode(doc)


def config(tmp: Path, bs: str, case: Case, port: int, policy: Path,
           mqtt: dict[str, Any] | None = None) -> tuple[Path, dict[str, str]]:
    """The daemon's config for ``case``: fresh topics and group, a JSON-lines sink, idle after
    ``IDLE``; ``mqtt``: access events over MQTT only (Kafka still carries the state)."""
    topics = {name: unique_name(name.replace("_", "-"))
              for name in ("access_logs", "directory", "subjects", "accounts", "alerts", "dlq")}
    doc: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "policy": str(policy),
        "kafka": {"bootstrap": bs, "group": unique_name("g"), "heartbeat_interval_ms": 300,
                  "session_timeout_ms": 1500, "idle_after_seconds": IDLE,
                  "commit_interval_seconds": 0.2, "poll_timeout_ms": 100,
                  "request_timeout_ms": 10000},
        "topics": topics,
        "detection": {"lateness_seconds": case.lateness, "future_seconds": case.future},
        "sinks": {"jsonl": {"path": str(tmp / "alerts.jsonl")}},
        "delivery": {"retry_initial_seconds": 0.05, "retry_max_seconds": 0.5},
        "shutdown_timeout_seconds": 10,
    }
    if mqtt is not None:
        doc["kafka"]["consume"] = False
        doc["mqtt"] = {"idle_after_seconds": IDLE, "client_id": unique_name("wd"),
                       "checkpoint": {"path": str(tmp / "mqtt.checkpoint")}, **mqtt}
    path = tmp / "watchdog.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, topics
