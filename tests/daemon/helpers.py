"""Helpers for the daemon tests: a small simulated organisation, what replay says about it,
and waiting for conditions with deadlines (no blind sleeps).

The world comes from ``watchdog.simulate`` (every rule injected once); the reference alerts
come from ``watchdog replay``'s own function over the same files, so "the daemon gives the
alerts replay gives" is checked against the real thing.
"""

from __future__ import annotations

import asyncio
import io
import os
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from watchdog.alerts.model import Alert
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.daemon.app import Service
from watchdog.daemon.config import Config
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.sinks.memory import MemorySink
from watchdog.decode import Decoder
from watchdog.engine.engine import Engine
from watchdog.events import DirectoryRecord, SubjectRecord
from watchdog.files.jsonl import RejectedWriter
from watchdog.policy import load_policy
from watchdog.replay import replay
from watchdog.rules import default_rules
from watchdog.simulate import SimConfig, build_world, write_world

# the first line of the endless error bodies of HookReceiver(endless_errors=True)
ERROR_REASON = b"upstream exploded: try again later"
KEY = os.environ.get("WATCHDOG_PSEUDONYM_KEY", "test-key-0123456789abcdef")


@dataclass
class World:
    dir: Path
    events: list[bytes]
    directory: list[bytes]
    subjects: list[bytes]
    policy: Path
    # alert_id -> completing event id, from replay
    expected: dict[str, str] = field(default_factory=dict)

    def engine(self) -> Engine:
        """An engine with the policy and the directory/subject state loaded."""
        engine = Engine(load_policy(str(self.policy)), Pseudonymizer(KEY.encode()), default_rules())
        dd, sd = Decoder(DirectoryRecord), Decoder(SubjectRecord)
        for raw in self.directory:
            engine.apply_directory(dd.decode(raw))  # type: ignore[arg-type]
        for raw in self.subjects:
            engine.apply_subject(sd.decode(raw))  # type: ignore[arg-type]
        return engine

    @staticmethod
    def user_of(raw: bytes) -> str:
        return str(orjson.loads(raw)["user"]["id"])

    def partitioned(self, n: int) -> dict[int, list[bytes]]:
        """Events split over ``n`` partitions by account, like Kafka keyed by user.id."""
        out: dict[int, list[bytes]] = {p: [] for p in range(n)}
        for raw in self.events:
            out[zlib.crc32(self.user_of(raw).encode()) % n].append(raw)
        return out


def make_world(d: Path) -> World:
    w = build_world(SimConfig(accounts=100, days=2, violations_per_rule=1, benign_per_kind=1,
                              events_per_account_per_day=5))
    paths = write_world(w, d)

    def lines(p: Path) -> list[bytes]:
        return [ln for ln in p.read_bytes().splitlines() if ln]

    world = World(d, lines(paths["events"]), lines(paths["directory"]),
                  lines(paths["subjects"]), paths["policy"])
    world.expected = replay_alerts(world.events, world.directory, world.subjects,
                                   world.policy, d / "replay")
    return world


def replay_alerts(events: list[bytes], directory: list[bytes], subjects: list[bytes],
                  policy: Path, tmp: Path) -> dict[str, str]:
    """alert_id -> completing event id, as ``watchdog replay`` finds them."""
    tmp.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, docs in (("events", events), ("directory", directory), ("subjects", subjects)):
        paths[name] = tmp / f"{name}.jsonl"
        paths[name].write_bytes(b"".join(d + b"\n" for d in docs))
    engine = Engine(load_policy(str(policy)), Pseudonymizer(KEY.encode()), default_rules())
    out = io.BytesIO()
    rejected = RejectedWriter(tmp / "rejected.jsonl")
    replay(str(paths["events"]), out, engine, directory=str(paths["directory"]),
           subjects=str(paths["subjects"]), rejected=rejected)
    rejected.close()
    alerts = [orjson.loads(line) for line in out.getvalue().splitlines()]
    return {a["alert_id"]: a["event_ids"][-1] for a in alerts}


async def wait_for(cond: Callable[[], bool], within: float = 20.0, what: str = "condition",
                   interval: float = 0.02) -> None:
    """Poll ``cond`` until true; fail with ``what`` at the deadline (no blind sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not cond():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_async(cond: Callable[[], Awaitable[bool]], within: float = 20.0,
                     what: str = "condition", interval: float = 0.1) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await cond():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


class HookReceiver:
    """A tiny HTTP server on 127.0.0.1:free port that records POSTed JSON bodies.

    ``fail_first``: answer that many requests with 500 first (to exercise retries);
    ``delay``: seconds before each answer (a slow receiver); ``gate``: no answer until set;
    ``endless``: every 200 has a body that never ends; ``endless_errors``: every 500 has one
    (its first line :data:`ERROR_REASON`).
    """

    def __init__(self, fail_first: int = 0, *, delay: float = 0.0,
                 gate: asyncio.Event | None = None, endless: bool = False,
                 endless_errors: bool = False) -> None:
        self.delay = delay
        self.endless = endless  # a 200 whose (chunked) body never ends: a streaming endpoint
        self.endless_errors = endless_errors
        self.gate = gate
        self.bodies: list[Any] = []
        self.requests = 0
        self.headers: list[dict[str, str]] = []
        self.fail_first = fail_first
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __aenter__(self) -> HookReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: several requests per connection
                line = await reader.readline()
                if not line:
                    return
                headers = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if self.gate is not None:
                    await self.gate.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)  # the receiver's own work
                self.requests += 1
                if self.requests <= self.fail_first:
                    status = "500 Internal Server Error"
                else:
                    status = "200 OK"
                    self.bodies.append(orjson.loads(body))
                    self.headers.append(headers)
                if self.endless_errors and status != "200 OK":
                    await self._endless(writer, status, first=ERROR_REASON + b"\n")
                if self.endless and status == "200 OK":
                    await self._endless(writer, status)
                writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _endless(writer: asyncio.StreamWriter, status: str, first: bytes = b"") -> None:
        """An answer whose (chunked) body never ends: until the client hangs up."""
        writer.write(f"HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        if first:
            writer.write(b"%x\r\n%s\r\n" % (len(first), first))
        chunk = b"x" * 8192
        while True:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            await asyncio.sleep(0.005)


def service(cfg: Config, world: World) -> Service:
    """A daemon instance in this process (no HTTP listener) with the world's policy."""
    engine = Engine(load_policy(str(world.policy)), Pseudonymizer(KEY.encode()), default_rules())
    return Service(cfg, engine, metrics=Metrics(), listen=False)


def model_service(cfg_path: Path, model: Path | None) -> tuple[Service, MemorySink]:
    """A daemon instance in this process with the insider world's engine (tests.anomaly), the
    anomaly stage of ``model`` if any, and a memory sink (returned beside it)."""
    from tests.anomaly.conftest import make_engine
    from watchdog.anomaly.stage import load_stage
    from watchdog.daemon.config import load_config

    engine = make_engine()
    stages = [load_stage(model, engine, warmup=6 * 3600.0)] if model else []
    sink = MemorySink()
    return Service(load_config(str(cfg_path)), engine, metrics=Metrics(), stages=stages,
                   sinks=[sink], listen=False), sink


async def join_in_turn(services: list[Service], runs: list[asyncio.Task[int]],
                       partitions: int) -> None:
    """Start the instances one after the other, each once the previous one has joined the
    group (their tasks go into ``runs``), then wait until the partitions are split over all."""
    for i, svc in enumerate(services):
        runs.append(asyncio.create_task(svc.run()))
        if i < len(services) - 1:
            await wait_for(lambda s=svc: bool(s.sources[0].assigned), within=30,
                           what=f"instance {i} joined")
    await wait_for(lambda: all(s.sources[0].assigned for s in services)
                   and sum(len(s.sources[0].assigned) for s in services) == partitions,
                   within=40, what="the group rebalanced over every instance")


async def stop_all(services: list[Service], runs: list[asyncio.Task[int]], within: float) -> None:
    """Ask every service to stop and expect each run to end with 0 within ``within`` s."""
    for s in services:
        s.request_stop()
    assert await asyncio.wait_for(asyncio.gather(*runs), within) == [0] * len(runs)


def cancel_all(services: list[Service], runs: list[asyncio.Task[int]]) -> None:
    """Clean-up after a failure: stop what runs, cancel what did not end."""
    for s in services:
        s.request_stop()
    for r in runs:
        if not r.done():
            r.cancel()


class Rec(NamedTuple):
    """A record shaped like aiokafka's ConsumerRecord, for feeding a pipeline directly."""

    offset: int
    value: bytes
    partition: int = 0
    key: bytes | None = None
    timestamp: int = 0


class CollectAlerts:
    """In place of Delivery (a pure test of the pipeline: alerts are kept, not sent)."""

    pending = 0

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def submit(self, alert: Alert, book: Any, offset: int, consumed_at: float) -> None:
        self.alerts.append(alert)


def fetched(pipeline: Any, p: int, recs: list[Any], highwater: int,
            topic: str = "access-logs") -> None:
    """One fetch's records of partition ``p`` (its end as the fetch told it: ``highwater``)
    handed to ``pipeline`` as :meth:`KafkaSource.run` hands them on (no broker)."""
    st = pipeline.partitions[p]
    st.behind = highwater > recs[-1].offset + 1
    st.end_known = True
    high = pipeline.ingest(p, recs, topic)
    st.pos = recs[-1].offset + 1
    st.high = max(st.high, high)


class NoDeadLetters:
    """A dead-letter outbox for valid input only: any dead letter fails the test."""

    def put(self, item: Any) -> None:
        raise AssertionError(f"a valid event was dead-lettered: {item}")


class QuietLog:
    """A logger that drops everything (held strays are logged, hundreds of times in a fuzz
    run)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **kw: None


class RecordingLog:
    """A logger that keeps every line as (event, fields), any level, ``bind`` ignored."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def bind(self, **_kw: Any) -> RecordingLog:
        return self

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.lines.append((event, kw))

    def events(self) -> list[str]:
        return [e for e, _ in self.lines]
