"""What the fault-injection tests share: a simulated stream, a rate-limited producer that can
be parked, the daemon as a real process, a webhook receiver that can be down, and waits with
deadlines (never blind sleeps).

The daemon runs as ``python -m watchdog run --config FILE`` (config written by the daemon
tests' :func:`~tests.daemon.kafkautil.daemon_config`); what "no alert lost" means is checked
against ``watchdog replay`` over the same events (:func:`~tests.daemon.helpers.replay_alerts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.daemon.helpers import replay_alerts
from tests.daemon.kafkautil import daemon_config, make_topics, produce_state, read_all
from tests.services.exposition import samples, total
from tests.services.procs import ManagedProcess, free_port
from watchdog.simulate import SimConfig, build_world, write_world

ROOT = Path(__file__).resolve().parents[2]
# The streams below replay two days of event time in a few seconds (~10 h of event time per
# second of wall time), so partitions fetched a fraction of a second apart are hours apart in
# event time. The allowed disorder is scaled accordingly: 2 h of event time is ~0.2 s of wall
# time here, less than the 60 s default allows a real-time stream.
LATENESS = 7200.0
TOPIC = "access-logs"
GROUP = "watchdog"
PARTITIONS = 4

# ~9k events over 2 days of 120 accounts; every rule but anomaly fires (42 alerts)
SIM = SimConfig(accounts=120, days=2, violations_per_rule=2, benign_per_kind=1,
                events_per_account_per_day=8)


@dataclass
class FaultWorld:
    dir: Path
    events: list[bytes]
    directory: list[bytes]
    subjects: list[bytes]
    policy: Path
    expected: dict[str, str] = field(default_factory=dict)  # alert_id -> completing event id

    def replay(self, events: list[bytes], name: str) -> dict[str, str]:
        return replay_alerts(events, self.directory, self.subjects, self.policy,
                             self.dir / name)


def make_fault_world(d: Path) -> FaultWorld:
    paths = write_world(build_world(SIM), d)

    def lines(p: Path) -> list[bytes]:
        return [ln for ln in p.read_bytes().splitlines() if ln]

    w = FaultWorld(d, lines(paths["events"]), lines(paths["directory"]),
                   lines(paths["subjects"]), paths["policy"])
    w.expected = w.replay(w.events, "replay-all")
    return w


def event_id(raw: bytes) -> str:
    return str(orjson.loads(raw)["event"]["id"])


# -- waiting ---------------------------------------------------------------------------------
async def until(cond: Callable[[], Awaitable[bool]], *, within: float, what: str,
                interval: float = 0.1) -> float:
    """Poll the async ``cond`` until true; return the seconds it took; fail at the deadline."""
    t0 = time.monotonic()
    deadline = t0 + within
    while not await cond():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
    return time.monotonic() - t0


# -- Kafka -----------------------------------------------------------------------------------
async def prepare_broker(bootstrap: str, world: FaultWorld) -> None:
    await make_topics(bootstrap, partitions=PARTITIONS)
    await produce_state(bootstrap, world)


class Offsets:
    """The group's committed offsets, from one long-lived client that never joins the group
    (so it does not disturb the daemon's membership).

    The end offsets to compare with come from :meth:`Stream.ends`: Tansu 0.6 answers
    ListOffsets(latest) with the last batch's base offset + 1, not the high watermark.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._c: AIOKafkaConsumer | None = None
        self.tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]

    async def _client(self) -> AIOKafkaConsumer:
        if self._c is None:
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=GROUP,
                                 enable_auto_commit=False, request_timeout_ms=5000)
            await c.start()
            self._c = c
        return self._c

    async def committed(self) -> dict[int, int]:
        c = await self._client()
        out = {}
        for tp in self.tps:
            off = await c.committed(tp)
            out[tp.partition] = 0 if off is None else off
        return out

    async def reached(self, ends: dict[int, int]) -> bool:
        """Is every partition committed exactly to ``ends``? (False while the broker is away.)"""
        try:
            return await self.committed() == ends
        except Exception:  # the broker is still coming back: a new client next time
            await self.reset()
            return False

    async def reset(self) -> None:
        c, self._c = self._c, None
        if c is not None:
            with contextlib.suppress(Exception):
                await c.stop()


class Stream:
    """Produces the events to ``access-logs`` in event-time order (key user.id, timestamp =
    event time) at about ``rate`` events/s, in chunks acknowledged one by one.

    ``stagger``: each chunk's records go partition by partition (each account to a fixed
    partition), this many seconds apart, as the batches of a shipper reach the partitions one
    after the other: a consumer then reads the partitions at different points of event time
    most of the time. Without it the partitioner places each record and a chunk reaches every
    partition at once.

    :meth:`park` stops it at a chunk boundary (its producer closed, e.g. before the broker is
    stopped); :meth:`resume` carries on with a new producer. ``park_at``: it parks by itself at
    the first chunk boundary past this many events, if not parked before (a bound on how far
    it runs ahead of a slow consumer: a test that parks it mid-stream still finds it there).
    ``where`` maps every acknowledged event id to its (partition, offset).
    """

    def __init__(self, bootstrap: str, events: list[bytes], *, rate: float,
                 chunk: int = 50, stagger: float = 0.0, park_at: int | None = None) -> None:
        self.bootstrap = bootstrap
        self.events = events
        self.rate = rate
        self.chunk = chunk
        self.stagger = stagger
        self.park_at = park_at
        self.sent = 0
        self.where: dict[str, tuple[int, int]] = {}
        self._go = asyncio.Event()
        self._go.set()
        self.parked = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Stream:
        self.task = asyncio.create_task(self._run(), name="stream")
        return self

    async def park(self, within: float = 15.0) -> None:
        self._go.clear()
        await asyncio.wait_for(self.parked.wait(), within)

    def resume(self) -> None:
        self.park_at = None
        self.parked.clear()
        self._go.set()

    def ends(self) -> dict[int, int]:
        """End offset of every partition, from the acknowledgements (only this stream
        produces to the topic)."""
        out = dict.fromkeys(range(PARTITIONS), 0)
        for p, off in self.where.values():
            out[p] = max(out[p], off + 1)
        return out

    def below(self, committed: dict[int, int]) -> list[bytes]:
        """The produced events whose offsets are below ``committed``, in stream order."""
        out = []
        for raw in self.events:
            where = self.where.get(event_id(raw))
            if where is not None and where[1] < committed[where[0]]:
                out.append(raw)
        return out

    async def done(self, within: float = 60.0) -> None:
        assert self.task is not None
        await asyncio.wait_for(asyncio.shield(self.task), within)

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task

    async def _run(self) -> None:
        docs = [orjson.loads(raw) for raw in self.events]
        producer: AIOKafkaProducer | None = None
        loop = asyncio.get_running_loop()
        try:
            t0, base = loop.time(), 0
            for i in range(0, len(self.events), self.chunk):
                if self.park_at is not None and i >= self.park_at:
                    self._go.clear()
                if not self._go.is_set():
                    if producer is not None:
                        await producer.stop()
                        producer = None
                    self.parked.set()
                    await self._go.wait()
                    t0, base = loop.time(), i  # the rate restarts after a pause
                if producer is None:
                    producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                                linger_ms=5)
                    await producer.start()
                batches = self._batches(self.events[i:i + self.chunk], docs[i:i + self.chunk])
                for n, batch in enumerate(batches):
                    if n:
                        await asyncio.sleep(self.stagger)  # pacing, as below
                    futures = [await producer.send(
                        TOPIC, raw, key=str(doc["user"]["id"]).encode(), partition=part,
                        timestamp_ms=_ms(doc["@timestamp"])) for raw, doc, part in batch]
                    for (_, doc, _), md in zip(batch, await asyncio.gather(*futures),
                                               strict=True):
                        self.where[doc["event"]["id"]] = (md.partition, md.offset)
                self.sent = min(i + self.chunk, len(self.events))
                # pacing (a rate limit, not a wait for a condition)
                due = t0 + (self.sent - base) / self.rate
                await asyncio.sleep(max(0.0, due - loop.time()))
        finally:
            self.parked.set()
            if producer is not None:
                await producer.stop()


    def _batches(self, raws: list[bytes], docs: list[Any]
                 ) -> list[list[tuple[bytes, Any, int | None]]]:
        """One chunk's records as sent together: all at once (the partitioner places them),
        or with ``stagger`` one batch per partition, each account's records in one partition
        (``zlib.crc32`` of its id)."""
        if not self.stagger:
            return [[(raw, doc, None) for raw, doc in zip(raws, docs, strict=True)]]
        by: dict[int, list[tuple[bytes, Any, int | None]]] = {}
        for raw, doc in zip(raws, docs, strict=True):
            p = zlib.crc32(str(doc["user"]["id"]).encode()) % PARTITIONS
            by.setdefault(p, []).append((raw, doc, p))
        return [by[p] for p in sorted(by)]


def _ms(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


async def alerts_on_topic(bootstrap: str) -> list[str]:
    """alert_id (the record key) of every record on ``alerts``, duplicates included."""
    return [r.key.decode() for r in await read_all(bootstrap, "alerts")]


# -- the daemon --------------------------------------------------------------------------------
class Daemon:
    """``watchdog run`` as a real process on a free --listen port."""

    def __init__(self, tmp: Path, bootstrap: str, world: FaultWorld, *, name: str = "watchdog",
                 **extra: Any) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        kafka = {"idle_after_seconds": 2.0, **extra.pop("kafka", {})}
        self.config = daemon_config(tmp / f"{name}.yaml", bootstrap,
                                    listen=f"127.0.0.1:{self.port}", policy=str(world.policy),
                                    kafka=kafka, detection={"lateness_seconds": LATENESS},
                                    **extra)
        self.proc = ManagedProcess(name, [sys.executable, "-m", "watchdog", "run", "--config",
                                          str(self.config)], cwd=ROOT, stop_timeout=12.0,
                                   log_path=tmp / f"{name}.log")
        self.http = httpx.AsyncClient(timeout=2.0)

    def start(self) -> Daemon:
        self.proc.start()
        return self

    async def aclose(self) -> None:
        self.proc.stop(kill=True)
        await self.http.aclose()

    async def metrics(self) -> dict[str, float]:
        """``name{labels}`` -> value of every watchdog_ sample ({} while it does not answer)."""
        try:
            text = (await self.http.get(f"{self.base}/metrics")).text
        except httpx.HTTPError:
            return {}
        return samples(text)

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        try:
            r = await self.http.get(f"{self.base}/readyz")
        except httpx.HTTPError:
            return 0, {}
        return r.status_code, r.json()

    async def wait_consuming(self, within: float = 45.0) -> float:
        """Ready, with all partitions of access-logs assigned (the group join is done)."""
        async def ok() -> bool:
            if not self.proc.running:
                raise AssertionError(f"the daemon exited with {self.proc.returncode}\n"
                                     f"{self.proc.log_tail()}")
            status, body = await self.readyz()
            return status == 200 and len(body.get("partitions", [])) == PARTITIONS

        return await until(ok, within=within, what="the daemon to consume all partitions")

    async def events_total(self) -> float:
        return total(await self.metrics(), "watchdog_events_total")

    async def lag(self) -> float:
        s = await self.metrics()
        return sum(v for k, v in s.items()
                   if k.startswith("watchdog_consumer_lag{") and f'topic="{TOPIC}"' in k)

    def log_events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for ln in self.proc.log_text().splitlines():
            if ln.startswith("{") and f'"{name}"' in ln:
                doc = orjson.loads(ln)
                if doc.get("event") == name:
                    out.append(doc)
        return out


def duplicates(ids: list[str]) -> int:
    return sum(n - 1 for n in Counter(ids).values())


def lost_and_extra(delivered: list[str], expected: dict[str, str]) -> tuple[set[str], set[str]]:
    got = set(delivered)
    return set(expected) - got, got - set(expected)


# -- a daemon consuming a live stream ----------------------------------------------------------
@dataclass
class Run:
    """The daemon (default settings) consuming a stream produced at ``rate`` events/s, the
    group's offsets at hand: what :func:`streaming_daemon` yields."""

    world: FaultWorld
    bootstrap: str
    daemon: Daemon
    stream: Stream
    offsets: Offsets

    @property
    def n(self) -> int:
        return len(self.world.events)

    # (liveness bounds, not speed: raised from 60 s / 90 s while test_broker_restart over
    # Tansu-on-moto failed at them; the cause was the daemon's 50 ms fetch wait there, see
    # that test's docstring: with 500 ms its whole runs take 39-51 s)
    async def until_committed(self, share: float, *, within: float = 180.0) -> None:
        async def enough() -> bool:
            return sum((await self.offsets.committed()).values()) >= share * self.n

        await until(enough, within=within,
                    what=f"the daemon to commit {share:.0%} of the stream")

    async def finish(self, what: str = "the daemon to commit the whole stream") -> list[str]:
        """Wait until the whole stream is produced and committed; check that every alert
        replay finds is on ``alerts`` and nothing else; the alert ids on the topic."""
        await self.stream.done()
        ends = self.stream.ends()
        await until(lambda: self.offsets.reached(ends), within=240, what=what)
        on_topic = await alerts_on_topic(self.bootstrap)
        lost, extra = lost_and_extra(on_topic, self.world.expected)
        assert not lost, f"{len(lost)} alert(s) lost: {sorted(lost)}"
        assert not extra, f"alerts replay does not give: {sorted(extra)}"
        return on_topic


@contextlib.asynccontextmanager
async def streaming_daemon(bootstrap: str, world: FaultWorld, tmp: Path, *,
                           rate: float = 2000, chunk: int = 50, stagger: float = 0.0,
                           park_at: int | None = None, **settings: Any) -> AsyncIterator[Run]:
    """Topics and state prepared, the daemon (``settings``: config sections) started and
    consuming all partitions, then the stream (see :class:`Stream`) started; on exit the
    stream, the offsets client and the daemon are closed."""
    await prepare_broker(bootstrap, world)
    run = Run(world, bootstrap, Daemon(tmp, bootstrap, world, **settings),
              Stream(bootstrap, world.events, rate=rate, chunk=chunk, stagger=stagger,
                     park_at=park_at),
              Offsets(bootstrap))
    try:
        run.daemon.start()
        await run.daemon.wait_consuming()
        run.stream.start()
        yield run
    finally:
        await run.stream.close()
        await run.offsets.reset()
        await run.daemon.aclose()


# -- a webhook receiver that can be down -------------------------------------------------------
class Receiver:
    """An HTTP endpoint on a fixed 127.0.0.1 port that the test controls.

    Not listening at all (:meth:`down`: connection refused), or listening and answering every
    POST with ``503`` (``mode = "error"``) or with ``200`` after ``delay`` seconds, recording
    the ``alert_id`` and the document of each alert it accepted (``mode = "ok"``).
    """

    def __init__(self, *, delay: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.delay = delay
        self.mode = "ok"
        self.ids: list[str] = []
        self.bodies: list[bytes] = []
        self.refused = 0  # answered 503
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def up(self, mode: str = "ok") -> None:
        self.mode = mode
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for w in list(self._conns):
                w.close()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while True:  # keep-alive
                if not await reader.readline():
                    return
                headers = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if self.mode == "ok":
                    if self.delay:
                        await asyncio.sleep(self.delay)  # a slow receiver
                    self.ids.append(orjson.loads(body)["alert_id"])
                    self.bodies.append(body)
                    status = "200 OK"
                else:
                    self.refused += 1
                    status = "503 Service Unavailable"
                writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()
