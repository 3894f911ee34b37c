"""The directory, subject register and (1.1) identity-provider accounts from their compacted
topics, read in full by every instance: a consumer without a group, from the beginning, then
tailing. The ``accounts`` topic is optional: read when it exists.

Records are applied to the engine as they come; its state is kept on event time (a record
applies from its ``effective`` instant), so the order of reading does not matter. ``loaded``
is set once every partition of both topics has been read to the end it had at start-up:
access events are consumed only after that (``/readyz`` says so). Invalid records are
dead-lettered like invalid events; tombstones (compaction deletes) are skipped. A valid record
whose application raises (a bug) is dead-lettered as ``processing_error`` and the next read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from watchdog.daemon.config import Config
from watchdog.daemon.deadletter import DeadLetter
from watchdog.daemon.delivery import Outbox
from watchdog.daemon.kafka_client import client_kwargs
from watchdog.daemon.metrics import Metrics
from watchdog.decode import Decoder, Rejection
from watchdog.engine.engine import Engine
from watchdog.engine.faults import REASON, fault_site
from watchdog.events import (
    AccountRecord,
    DirectoryRecord,
    SubjectRecord,
    check_times,
    effective_as_written,
)


class StateTopics:
    name = "state"

    def __init__(self, cfg: Config, engine: Engine, dead_letters: Outbox[DeadLetter],
                 metrics: Metrics, log: Any) -> None:
        self.cfg = cfg
        self.engine = engine
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.log = log
        t = cfg.topics
        dec_dir = Decoder(DirectoryRecord, check=check_times)
        dec_sub = Decoder(SubjectRecord, check=check_times)
        dec_acc = Decoder(AccountRecord, check=check_times)
        # topic -> (decoder, apply(document, raw bytes))
        self._apply: dict[str, tuple[Decoder[Any], Callable[[Any, bytes], None]]] = {
            t.directory: (dec_dir, lambda d, raw: engine.apply_directory(
                d, effective_as_written(raw))),
            t.subjects: (dec_sub, lambda d, raw: engine.apply_subject(
                d, effective_as_written(raw))),
            t.accounts: (dec_acc, lambda d, raw: engine.apply_account(d)),
        }
        self._optional = {t.accounts}
        self.archive: Any = None  # sinks.archive.DaemonArchive, when configured
        self.consumer: AIOKafkaConsumer | None = None
        self.loaded = asyncio.Event()
        self.broker_ok = False
        self.records = 0
        self._pending: set[TopicPartition] = set()  # not yet read to their start-up end
        self._beat = time.monotonic()

    async def start(self) -> None:
        c = self.consumer = AIOKafkaConsumer(
            enable_auto_commit=False, auto_offset_reset="earliest",
            **client_kwargs(self.cfg.kafka))
        await c.start()
        await c.topics()  # metadata for partitions_for_topic
        tps: list[TopicPartition] = []
        for topic in self._apply:
            parts = c.partitions_for_topic(topic)
            if not parts:
                if topic in self._optional:
                    self.log.info("state_topic_absent", topic=topic,
                                  hint="optional; created later, it is read after a restart")
                else:
                    self.log.warning("state_topic_missing", topic=topic,
                                     hint="no records of it will be applied until a restart")
                continue
            tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        self.broker_ok = True
        if not tps:
            self.loaded.set()
            return
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        self._pending = set(tps)

    async def run(self) -> None:
        c = self.consumer
        if c is None or not c.assignment():
            await asyncio.Event().wait()  # nothing to tail; wait to be cancelled
        assert c is not None
        # (no group: every instance reads these in full)
        lag = {tp: self.metrics.lag.labels("", tp.topic, str(tp.partition))
               for tp in c.assignment()}
        while True:
            self._beat = time.monotonic()
            try:
                data = await c.getmany(timeout_ms=200 if self._pending else 1000,
                                       max_records=5000)
            except KafkaError as err:
                self.log.warning("state_fetch_failed", error=type(err).__name__)
                await asyncio.sleep(1.0)
                continue
            for tp, recs in data.items():
                self._ingest(tp, recs)
            for tp, child in lag.items():
                hw = c.highwater(tp)
                if hw is None:
                    continue
                behind = max(0, hw - await c.position(tp))
                child.set(behind)
                if behind == 0 and tp in self._pending:
                    self._pending.discard(tp)
                    if not self._pending:
                        self.loaded.set()
                        self.log.info("state_loaded", records=self.records,
                                      accounts=len(self.engine.directory),
                                      subject_states=len(self.engine.register))

    def _ingest(self, tp: TopicPartition, recs: list[Any]) -> None:
        decoder, apply = self._apply[tp.topic]
        for rec in recs:
            if rec.value is None:
                continue  # a tombstone: compaction deletes the key
            doc = decoder.decode(rec.value)
            if isinstance(doc, Rejection):
                self.metrics.count_invalid(doc.reason)
                self.log.warning("rejected", reason=doc.reason, detail=doc.detail[:200],
                                 topic=tp.topic, partition=tp.partition, offset=rec.offset)
                self.dead_letters.put(DeadLetter(rec.value, rec.key, doc.reason, doc.detail,
                                                 tp.topic, tp.partition, rec.offset))
                continue
            try:
                apply(doc, rec.value)
            except Exception as err:  # a bug: one record must not stop the state topics
                self._failed(tp, rec, err)
                continue
            self.records += 1
            if self.archive is not None:
                self.archive.put_record(tp.topic, doc, rec.value)

    def _failed(self, tp: TopicPartition, rec: Any, err: Exception) -> None:
        """A valid record whose application raised (:mod:`watchdog.engine.faults`):
        dead-lettered as ``processing_error``, logged, and the next one read."""
        self.metrics.count_invalid(REASON)
        site = fault_site(err)
        self.log.error("record_not_applied", error=site, topic=tp.topic,
                       partition=tp.partition, offset=rec.offset,
                       consequence="the state misses it (a bug: please report it)")
        self.dead_letters.put(DeadLetter(rec.value, rec.key, REASON, f"not applied: {site}",
                                         tp.topic, tp.partition, rec.offset))

    async def probe(self) -> None:
        """Is the broker reachable? (a metadata request, for /readyz)."""
        c = self.consumer
        if c is None:
            self.broker_ok = False
            return
        try:
            async with asyncio.timeout(3.0):
                await c.topics()
        except (KafkaError, TimeoutError, OSError):
            self.broker_ok = False
        else:
            self.broker_ok = True

    def alive(self, now: float) -> bool:
        return now - self._beat < self.cfg.stall_seconds

    async def close(self) -> None:
        c, self.consumer = self.consumer, None
        if c is not None:
            await c.stop()
