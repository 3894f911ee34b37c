"""The live anomaly property's harness (tests/fuzz/test_fuzz_live_broker_anomaly.py and
test_live_broker_anomaly_seek.py): what a plan draws (chunks, partitions, interleaving, the
kill -9 and SIGTERM points), the daemon's config, and a run of a plan against the real broker
and ``watchdog run`` processes."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson
import yaml
from aiokafka import AIOKafkaProducer
from hypothesis import event as _event
from hypothesis import note as _note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tests.anomaly.conftest import directory_records
from tests.daemon.kafkautil import committed
from tests.fuzz._anomaly_stream import (
    ACCOUNTS,
    DAY,
    DOCS,
    KILL_SPANS,
    NIGHT_SPANS,
    RAWS,
    TIMES,
    USERS,
    before_cut,
    cut_at,
    engine,
)
from tests.fuzz._daemon_process import FAST_GROUP, Daemon, wait_until, write_live_config
from tests.fuzz._live_broker import SENTINEL, comparable
from tests.services.fixtures import create_topics
from tests.services.procs import free_port
from watchdog.engine.detector import Detector
from watchdog.engine.ordering import Reorderer

STATE_EVERY = 0.5  # model_state.every_seconds: several saves per example
SAVES_OK = 'watchdog_model_state_saves_total{result="ok"}'
SAVES_FAILED = 'watchdog_model_state_saves_total{result="failed"}'
RESTORED = 'watchdog_model_state_restores_total{result="restored"}'
MAX_RUNS = 40  # interleaving runs drawn one by one per chunk; past that, one per partition


def note(text: str) -> None:
    if currently_in_test_context():  # (not in a run of a hand-made plan)
        _note(text)


def event(text: str) -> None:
    if currently_in_test_context():
        _event(text)


# -- the delivery -------------------------------------------------------------------------------
@dataclass(repr=False)
class Plan:
    parts: int
    keyed: bool
    lateness: float
    chunks: list[list[tuple[int, int]]]  # per chunk: (event index, partition) produced in turn
    pauses: list[bool]  # after chunk k: read to its end and idle (the reorder buffer released)
    kill_after: int  # chunk: once it was read and the state saved since, kill -9 ...
    kill_during_next: bool  # ... after the next chunk was produced (else at once)
    kill_delay: float  # seconds after that
    term_after: int | None  # SIGTERM and restart after this chunk (after the kill, if both)
    term_idle: bool  # after every partition is idle (else while the chunk is read)
    copies: int

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # (hypothesis' printer)
        p.text(repr(self))

    def __repr__(self) -> str:  # (the chunks' thousands of pairs would bury the rest)
        return (f"Plan(parts={self.parts}, keyed={self.keyed}, lateness={self.lateness}, "
                f"chunks={[len(c) for c in self.chunks]}, "
                f"first={[c[0] for c in self.chunks]}, pauses={self.pauses}, "
                f"kill_after={self.kill_after}, kill_during_next={self.kill_during_next}, "
                f"kill_delay={self.kill_delay}, term_after={self.term_after}, "
                f"term_idle={self.term_idle}, copies={self.copies})")


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    n = len(DOCS)
    parts = draw(st.integers(1, 3))
    keyed = draw(st.booleans())
    salt = draw(st.integers(0, 2**16))
    # keyed: by account, as the producers key them; else anyhow (by a salted hash)
    part = [zlib.crc32((u if keyed else f"{salt}:{i}").encode()) % parts
            for i, u in enumerate(USERS)]
    first, last = draw(st.sampled_from(KILL_SPANS))
    kill_cut = cut_at(draw(st.integers(first, last)))
    # a SIGTERM anywhere, or in a night's copies (where a stop that closed the open windows
    # instead of draining them would show)
    term_span = draw(st.sampled_from((None, (1, n - 1), *NIGHT_SPANS)))
    term_cut = None if term_span is None else cut_at(draw(st.integers(*term_span)))
    cuts = {kill_cut} | {cut_at(k) for k in draw(st.lists(st.integers(1, n - 1), max_size=3))}
    if term_cut is not None:
        cuts.add(term_cut)
    bounds = [0, *sorted(cuts), n]
    chunks: list[list[tuple[int, int]]] = []
    copies = 0
    for lo, hi in itertools.pairwise(bounds):
        queues: dict[int, list[int]] = {}
        for i in range(lo, hi):
            queues.setdefault(part[i], []).append(i)
        for _ in range(draw(st.integers(0, 2))):  # a producer's retry, a few records later
            p = draw(st.sampled_from(sorted(queues)))
            q = queues[p]
            at = draw(st.integers(0, len(q) - 1))
            q.insert(min(len(q), at + 1 + draw(st.integers(0, 3))), q[at])
            copies += 1
        chunk: list[tuple[int, int]] = []
        runs = 0
        while queues:  # the partitions interleaved in runs of any length
            p = draw(st.sampled_from(sorted(queues)))
            size = 2 ** draw(st.integers(0, 10)) if runs < MAX_RUNS else len(queues[p])
            runs += 1
            chunk.extend((i, p) for i in queues[p][:size])
            del queues[p][:size]
            if not queues[p]:
                del queues[p]
        chunks.append(chunk)
    return Plan(parts, keyed, draw(st.sampled_from((1.0, 60.0, 300.0))), chunks,
                [draw(st.booleans()) for _ in chunks], bounds.index(kill_cut) - 1,
                draw(st.booleans()), draw(st.sampled_from((0.0, 0.1, 0.3, 0.7))),
                None if term_cut is None else bounds.index(term_cut) - 1,
                draw(st.booleans()), copies)


# -- the run ------------------------------------------------------------------------------------
def rebuild_records(plan: Plan) -> int:
    """``kafka.rebuild_max_records`` for ``plan``: twice the most records any partition holds
    in one window horizon of event time (the rules' windows are whole after a restart), and
    far fewer than a day's. Tansu 0.6 answers ``offsets_for_times`` with offset 0 whatever the
    time: unbounded, every restart would re-read the whole topic, and the stage rebuilt from
    it would hide a lost state (on main, with the state in memory only, the test passed).
    A kill while the next chunk is read adds that chunk's records of a partition: read since
    the last save, they may lie between its state's place and the committed offset (a state
    further back than this bound is ``stale`` by design)."""
    horizon = Detector(engine(), Reorderer(lateness=plan.lateness)).horizon()
    densest = 0
    for p in range(plan.parts):
        times = [TIMES[i] for chunk in plan.chunks for i, q in chunk if q == p]
        lo = 0
        for hi, t in enumerate(times):  # (in production order: sorted but for the copies)
            while times[lo] <= t - horizon:
                lo += 1
            densest = max(densest, hi - lo + 1)
    read = 0
    if plan.kill_during_next:
        read = max(sum(1 for _, q in plan.chunks[plan.kill_after + 1] if q == p)
                   for p in range(plan.parts))
    return 2 * densest + 20 + read


def write_config(tmp: Path, bs: str, port: int, model: Path, plan: Plan,
                 state_every: float = STATE_EVERY,
                 sinks: dict[str, Any] | None = None) -> tuple[Path, dict[str, str]]:
    """The daemon's config; ``sinks``: instead of a JSON-lines file (``alerts.jsonl``)."""
    return write_live_config(
        tmp, bs, port, model, state_every=state_every, sinks=sinks,
        kafka={**FAST_GROUP, "rebuild_max_records": rebuild_records(plan)},
        # (the end marker, two days on, is not held as a stray dated ahead of the present)
        detection={"lateness_seconds": plan.lateness, "future_seconds": 4 * DAY})


class Run:
    """One example's daemon, what was produced, and what it has read."""

    def __init__(self, daemon: Daemon, producer: AIOKafkaProducer, plan: Plan,
                 topic: str) -> None:
        self.daemon, self.producer, self.plan, self.topic = daemon, producer, plan, topic
        self.ends = dict.fromkeys(range(plan.parts), 0)  # per partition: offsets produced
        # the sentinels (invalid records, one per partition at each chunk's end) counted once
        # all produced is read; None after a restart (whether a re-read one counts again is
        # the daemon's business) until the next wait for every partition idle
        self.expect: float | None = 0.0
        self.late = 0.0
        self.restarts: list[str] = []

    async def produce(self, chunk: list[tuple[int, int]]) -> None:
        # Kafka timestamps are the events' times, as a live producer's would be
        futures = []
        for i, p in chunk:
            futures.append(await self.producer.send(
                self.topic, RAWS[i], partition=p, timestamp_ms=int(TIMES[i] * 1000),
                key=USERS[i].encode() if self.plan.keyed else None))
        at = int(max(TIMES[i] for i, _ in chunk) * 1000)
        ends = [await self.producer.send(self.topic, SENTINEL, partition=p, timestamp_ms=at)
                for p in range(self.plan.parts)]
        await asyncio.gather(*futures)
        for md in await asyncio.gather(*ends):
            self.ends[md.partition] = md.offset + 1
        if self.expect is not None:
            self.expect += self.plan.parts

    async def read(self, what: str) -> None:
        """Until everything produced so far was read."""
        if self.expect is None:
            await self.daemon.idle(self.plan.parts, what)
            self.expect = await self.daemon.total("watchdog_events_invalid_total")
        else:
            await self.daemon.read_to(self.expect, what)

    async def saved(self, what: str) -> None:
        """Until a state save captured after this call (the second one written since)."""
        before = (await self.daemon.metrics()).get(SAVES_OK, 0.0)

        async def later() -> bool:
            return (await self.daemon.metrics()).get(SAVES_OK, 0.0) >= before + 2

        await wait_until(later, what, self.daemon.proc, within=30.0)

    async def account(self) -> None:
        """What this process says before it goes: no failed save; its late events."""
        m = await self.daemon.metrics()
        assert m.get(SAVES_FAILED, 0.0) == 0, "a state save failed"
        self.late += sum(v for k, v in m.items() if k.startswith("watchdog_events_late_total"))

    async def close(self) -> None:
        await self.producer.stop()
        await self.daemon.close()

    async def restart(self, how: str) -> None:
        """kill -9 or SIGTERM, and start again: the state must be restored."""
        await self.account()
        if how == "kill":
            self.daemon.proc.stop(kill=True)
        else:
            assert self.daemon.proc.stop() == 0, self.daemon.proc.log_tail()
        self.restarts.append(how)
        await self.daemon.start(self.plan.parts)
        self.expect = None
        m = await self.daemon.metrics()
        assert m.get(RESTORED, 0.0) == 1, (f"the state not restored after a {how}",
                                           {k: v for k, v in m.items() if "model_state" in k})


async def prepare(bs: str, tmp: Path, model: Path, plan: Plan,
                  **config: Any) -> tuple[Run, Path, dict[str, str]]:
    """A run of ``plan`` (the daemon not started yet; ``config``: :func:`write_config`'s),
    its topics created and the directory produced; its config file and topics. Close it
    (:meth:`Run.close`)."""
    port = free_port()
    cfg, topics = write_config(tmp, bs, port, model, plan, **config)
    await create_topics(bs, [topics["access_logs"]], partitions=plan.parts)
    await create_topics(bs, [topics[t] for t in ("directory", "subjects", "alerts", "dlq")])
    producer = AIOKafkaProducer(bootstrap_servers=bs, acks="all", linger_ms=5)
    await producer.start()
    run = Run(Daemon(cfg, port), producer, plan, topics["access_logs"])
    try:
        await asyncio.gather(*[await producer.send(topics["directory"], msgspec.json.encode(d),
                                                   key=d["user_id"].encode())
                               for d in directory_records(ACCOUNTS)])
    except BaseException:
        await run.close()
        raise
    return run, cfg, topics


async def run_plan(bs: str, tmp: Path, model: Path, plan: Plan) -> set[bytes]:
    """Deliver as ``plan`` says; the daemon's alerts before the cut."""
    run, cfg, topics = await prepare(bs, tmp, model, plan)
    daemon = run.daemon
    try:
        await daemon.start(plan.parts)
        last = len(plan.chunks) - 1
        for k, chunk in enumerate(plan.chunks):
            await run.produce(chunk)
            if plan.kill_during_next and k == plan.kill_after + 1:
                await asyncio.sleep(plan.kill_delay)
                await run.restart("kill")
            if plan.pauses[k] or k == last:
                await run.read(f"chunk {k} read to its end")
            if plan.pauses[k] and k != last:
                await daemon.flushed(f"the idle flush after chunk {k}")
            if k == plan.kill_after:  # after the first day was read and saved
                await run.read(f"chunk {k} read before the kill")
                await run.saved(f"a state save after chunk {k}")
                if not plan.kill_during_next:
                    await asyncio.sleep(plan.kill_delay)
                    await run.restart("kill")
            if k == plan.term_after:
                if plan.term_idle:
                    await daemon.idle(plan.parts, f"every partition idle after chunk {k}")
                await run.restart("term")
        await daemon.idle(plan.parts, "every partition idle at the end")
        await run.account()
        assert daemon.proc.stop() == 0, daemon.proc.log_tail()  # SIGTERM: save, drain, commit
        group = str(yaml.safe_load(cfg.read_text())["kafka"]["group"])
        assert await committed(bs, group, topics["access_logs"], plan.parts) == run.ends, (
            "an offset not committed")
    finally:
        await run.close()
    lines = (tmp / "alerts.jsonl").read_bytes().splitlines()
    whole = [ln for ln in lines if _parses(ln)]  # (a line torn by the kill: sent again)
    note(f"{plan!r} restarts={run.restarts} torn={len(lines) - len(whole)}")
    event(f"partitions={plan.parts} keyed={plan.keyed}")
    event(f"restarts={run.restarts}")
    assert run.late == 0, "an event was made late"
    return before_cut(comparable(whole))


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True
