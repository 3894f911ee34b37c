"""The service: every part of the daemon as named tasks of one ``asyncio.TaskGroup``.

Start-up: serve ``/metrics`` and health at once; connect to Kafka (retrying while the broker is
away: not ready meanwhile); read the directory and subject topics to their end; then consume
access events (Kafka group and/or MQTT). Ready from there on. While the group gives this
instance partition 0 and not every partition, it also runs the whole-stream reader
(:mod:`.sources.whole_stream`: ``log_gap`` over every partition).

Shutdown (SIGTERM/SIGINT), within ``shutdown_timeout_seconds``: stop consuming, flush the
Detector, wait for every sink to accept the alerts, commit offsets, disconnect, exit 0. If a
sink stays down, what it has not accepted is not committed: those events are read again on the
next start. SIGHUP reloads the policy (windows and state are kept).

A task that fails unexpectedly ends the group: the daemon exits 1 and the supervisor restarts
it; sinks and brokers that fail are retried, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaConnectionError

from watchdog import gc_policy
from watchdog.alerts.model import Alert, rfc3339
from watchdog.daemon.config import Config, in_group
from watchdog.daemon.deadletter import (
    PRODUCER_MAX_REQUEST,
    DeadLetter,
    DeadLetters,
    KafkaDeadLetters,
    accepted,
)
from watchdog.daemon.delivery import Delivery, Outbox, RetryPolicy
from watchdog.daemon.health import HealthServer
from watchdog.daemon.kafka_client import connection_problem, start_producer
from watchdog.daemon.logging import get_logger
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.notify import Notify
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sinks.alertmanager import AlertmanagerSink
from watchdog.daemon.sinks.audit import AuditSink
from watchdog.daemon.sinks.base import Sink
from watchdog.daemon.sinks.jsonl import JsonlSink
from watchdog.daemon.sinks.kafka import KafkaSink
from watchdog.daemon.sinks.mqtt import MqttSink
from watchdog.daemon.sinks.webhook import WebhookSink
from watchdog.daemon.sources.base import Source
from watchdog.daemon.sources.kafka import FINISH_STEP, KafkaSource
from watchdog.daemon.sources.kafka_state import StateTopics
from watchdog.daemon.sources.mqtt import MqttSource
from watchdog.daemon.sources.whole_stream import WholeStream
from watchdog.engine.detector import Stage
from watchdog.engine.engine import Engine
from watchdog.policy.model import PolicyException

if TYPE_CHECKING:
    from watchdog.daemon.sinks.archive import DaemonArchive

SourceFactory = Callable[[Pipeline], Source]
ANOMALY_GROUP_SUFFIX = ".anomaly"  # the consumer group of ``detection.only: anomaly``
HOUSEKEEPING = 0.25  # seconds between ticks: idle streams, gauges, systemd watchdog
# state sizes walk the rules' windows (distinct accounts of a large organisation's windows:
# milliseconds); a gauge that moves slowly needs no update four times a second
STATE_SIZES_SECONDS = 2.0
CLOSE_SECONDS = 2.0  # for disconnecting every client at the end


class Service:
    """``await Service(cfg, engine).run()`` -> exit code.

    Tests pass ``sinks``, ``dead_letters`` and ``sources`` (memory ones) and ``kafka=False``;
    by default everything comes from the config.
    """

    def __init__(
        self,
        cfg: Config,
        engine: Engine,
        *,
        metrics: Metrics | None = None,
        stages: Sequence[Stage] = (),
        sinks: Sequence[Sink] | None = None,
        dead_letters: DeadLetters | None = None,
        sources: Sequence[SourceFactory] | None = None,
        kafka: bool = True,
        listen: bool = True,
    ) -> None:
        if not cfg.detection.rules:
            # the anomaly service reads every event too: in a consumer group of its own
            cfg = in_group(cfg, ANOMALY_GROUP_SUFFIX)
        self.cfg = cfg
        self.engine = engine
        self._stages = list(stages)
        self.metrics = metrics or Metrics()
        self.metrics.name_datasets(cfg.metrics.datasets)
        self.metrics.promises.set_policy(engine.policy, engine.pseudonymize)
        self.log = get_logger("service")
        self.notify = Notify(self.log)
        self.stop_requested = asyncio.Event()
        self.started = asyncio.Event()  # consuming (ready once state is loaded)
        self.stopping = False
        self.producer: Any = None  # started in _connect (it needs the running loop)
        self._tick = time.monotonic()
        self._source_tasks: list[asyncio.Task[None]] = []
        self._congested = False
        self.joined = False  # the consumer group assigned partitions at least once

        m, retry = self.metrics, RetryPolicy(cfg.delivery.retry_initial_seconds,
                                             cfg.delivery.retry_max_seconds)
        self.sinks: list[Sink] = list(sinks) if sinks is not None else self._configured_sinks()
        self.delivery = Delivery(self.sinks, m, get_logger("delivery"),
                                 batch_max=cfg.delivery.batch_max, retry=retry)
        dl = dead_letters or KafkaDeadLetters(_ProducerRef(self), cfg.topics.dlq)
        self.dlq: Outbox[DeadLetter] = Outbox(
            dl.name, dl.send, accepted, m, get_logger("delivery"),
            batch_max=cfg.delivery.batch_max, timeout=dl.timeout, retry=retry)
        self.pipeline = Pipeline(engine, self.delivery, self.dlq, m, get_logger("pipeline"),
                                 stages=stages, lateness=cfg.detection.lateness_seconds,
                                 future=cfg.detection.future_seconds,
                                 dedupe_alert_ids=cfg.delivery.dedupe_alert_ids,
                                 rules=cfg.detection.rules)
        self._audit = next((s for s in self.sinks if isinstance(s, AuditSink)), None)
        engine.on_suppressed = self._suppressed
        self.state: StateTopics | None = None
        self.whole_stream: WholeStream | None = None  # with the configured Kafka source
        if kafka:
            self.state = StateTopics(cfg, engine, self.dlq, m, get_logger("state"))
        self.archive = self._configured_archive()
        factories = list(sources) if sources is not None else self._configured_sources()
        self.sources: list[Source] = [f(self.pipeline) for f in factories]
        self.health: HealthServer | None = None
        if listen:
            host, port = cfg.listen_address
            self.health = HealthServer.from_config(cfg.http, host, port, m, alive=self.alive,
                                                   ready=self.readiness,
                                                   log=get_logger("health"))

    # -- entry -------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        signals = self._install_signals(loop)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._lifecycle(tg), name="lifecycle")
        except Exception as group:  # an ExceptionGroup of the tasks that failed
            errors = group.exceptions if isinstance(group, BaseExceptionGroup) else (group,)
            for err in errors:
                self.log.error("fatal", error=type(err).__name__, detail=str(err)[:500],
                               exc_info=err)
            return 1
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        return 0

    def request_stop(self) -> None:
        if not self.stop_requested.is_set():
            self.log.info("stop_requested")
            self.stop_requested.set()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        installed: list[int] = []
        handlers = {signal.SIGTERM: self.request_stop, signal.SIGINT: self.request_stop,
                    signal.SIGHUP: self.reload_policy}
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass
        return installed

    # -- assembly ------------------------------------------------------------------------------
    def _configured_sinks(self) -> list[Sink]:
        s, out = self.cfg.sinks, list[Sink]()
        if s.kafka is not None:
            out.append(KafkaSink(_ProducerRef(self), s.kafka.topic or self.cfg.topics.alerts))
        if s.alertmanager is not None:
            out.append(AlertmanagerSink(s.alertmanager))
        if s.webhook is not None:
            out.append(WebhookSink(s.webhook))
        if s.mqtt is not None and self.cfg.mqtt is not None:
            out.append(MqttSink(self.cfg.mqtt, s.mqtt))
        if s.jsonl is not None:
            out.append(JsonlSink(s.jsonl.path))
        if s.audit is not None:
            key = s.audit.key.encode() if s.audit.key else None
            out.append(AuditSink(s.audit.path, fsync=s.audit.fsync, key=key))
        return out

    def _configured_archive(self) -> DaemonArchive | None:
        """The archive, in the rules service only (the anomaly service reads the same events)."""
        cfg = self.cfg
        if cfg.archive is None or not cfg.detection.rules:
            return None
        from watchdog.archive.retention import default_retention_days
        from watchdog.daemon.sinks.archive import DaemonArchive  # pyarrow: only when used

        archive = DaemonArchive(cfg.archive, cfg.topics, self.metrics, get_logger("archive"),
                                retention_days=default_retention_days(self.engine.policy))
        self.pipeline.archive = self.delivery.archive = archive
        if self.state is not None:
            self.state.archive = archive
        return archive

    def _configured_sources(self) -> list[SourceFactory]:
        cfg, out = self.cfg, list[SourceFactory]()
        if cfg.kafka.consume:
            # the whole-stream reader serves a rule (log_gap): not in the anomaly service
            ws = self.whole_stream = WholeStream(
                cfg, self.engine, self.delivery, self.pipeline, self.metrics,
                get_logger("whole_stream"), congested=self.congested,
            ) if cfg.detection.rules else None

            def assigned(src: KafkaSource) -> None:
                self.joined = True  # the group gave this instance its share (maybe none)
                if ws is not None:
                    ws.on_view(src)

            def kafka(p: Pipeline) -> Source:
                return KafkaSource(cfg, p, self.metrics, get_logger("kafka"),
                                   congested=self.congested, on_assigned=assigned,
                                   on_whole_commit=ws.record if ws else None)

            out.append(kafka)
        if cfg.mqtt is not None and cfg.mqtt.subscribe:
            mq = cfg.mqtt

            def mqtt(p: Pipeline) -> Source:
                return MqttSource(mq, p, get_logger("mqtt"), stall=cfg.stall_seconds,
                                  congested=self.congested)

            out.append(mqtt)
        return out

    def congested(self) -> bool:
        """Too many alerts wait for sinks: sources pause (hysteresis: resume at half)."""
        depth = self.delivery.pending + len(self.dlq)
        limit = self.cfg.delivery.max_pending
        arch = self.cfg.archive
        if self.archive is not None and arch is not None and self.archive.pending >= (
                arch.max_pending):
            depth = limit  # the archive is behind (its store is down): pause as well
        if depth >= limit:
            self._congested = True
        elif depth <= limit // 2:
            self._congested = False
        return self._congested

    # -- lifecycle -------------------------------------------------------------------------------
    async def _lifecycle(self, tg: asyncio.TaskGroup) -> None:
        background: list[asyncio.Task[Any]] = []

        def spawn(coro: Any, name: str) -> None:
            background.append(tg.create_task(coro, name=name))

        if self.health is not None:
            await self.health.start()
        spawn(self._housekeeping(), "housekeeping")
        for box in self.delivery.outboxes:
            spawn(box.run(), f"sink:{box.name}")
        spawn(self.dlq.run(), "dlq")
        if self.archive is not None:
            spawn(self.archive.run(), "archive")
        try:
            if not await self._connect():
                return  # stopped before the broker was ever reached
            for sink in self.sinks:
                await sink.start()
            if self.state is not None:
                spawn(self.state.run(), "state")
                spawn(self._probe(), "broker-probe")
                if not await self._until(self.state.loaded.wait()):
                    return
            gc_policy.settle()  # state loaded: keep the collector off it
            if self.whole_stream is not None:
                spawn(self.whole_stream.run(), "whole-stream")
            for src in self.sources:
                await src.start()
                self._source_tasks.append(tg.create_task(src.run(), name=f"source:{src.name}"))
            self.started.set()
            self.notify.ready()
            self.log.info("started", only=self.cfg.detection.only or "rules and model",
                          group=self.cfg.kafka.group if self.cfg.kafka.consume else None,
                          sources=[s.name for s in self.sources],
                          sinks=[s.name for s in self.sinks],
                          lateness_seconds=self.cfg.detection.lateness_seconds)
            await self.stop_requested.wait()
            await self._shutdown()
        finally:
            for task in background:
                task.cancel()
            await self._close()

    async def _until(self, aw: Any) -> bool:
        """Await ``aw`` unless a stop comes first; True if it completed."""
        task = asyncio.ensure_future(aw)
        stop = asyncio.ensure_future(self.stop_requested.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        for t in (task, stop):
            if t not in done:
                t.cancel()
        return task in done and task.exception() is None

    async def _connect(self) -> bool:
        """Start the producer and the state consumer, retrying while the broker is away."""
        if self.state is None:
            return True

        delay = 0.5
        while not self.stop_requested.is_set():
            try:
                self.producer = await start_producer(self.cfg.kafka, self.log,
                                                     PRODUCER_MAX_REQUEST)
                await self.state.start()
                return True
            except Exception as err:
                # once per retry interval, with the reason (aiokafka says only "Unable to
                # bootstrap"); nothing about idempotence or unclosed clients
                cause = (await connection_problem(self.cfg.kafka.bootstrap)
                         if isinstance(err, KafkaConnectionError) else None)
                self.log.warning("kafka_unreachable", bootstrap=self.cfg.kafka.bootstrap,
                                 error=type(err).__name__, detail=(cause or str(err))[:300],
                                 retry_in=round(delay, 1))
                if self.producer is not None:
                    with contextlib.suppress(Exception):
                        await self.producer.stop()
                    self.producer = None
                await self._until(asyncio.sleep(delay))
                delay = min(delay * 2, 10.0)
        return False

    async def _shutdown(self) -> None:
        cfg = self.cfg
        deadline = time.monotonic() + cfg.shutdown_timeout_seconds
        self.stopping = True
        self.metrics.ready.set(0)
        self.notify.stopping()
        ws = self.whole_stream
        for src in self.sources:
            src.stop()
        if ws is not None:
            ws.stop()
        if self._source_tasks:
            await asyncio.wait(self._source_tasks, timeout=max(0.1, deadline - time.monotonic()))
        if ws is not None:  # its buffer processed too (unless behind), before the drain
            await ws.settle(max(0.1, min(FINISH_STEP, deadline - time.monotonic())))
        behind = [s.name for s in self.sources if getattr(s, "behind", _never)()]
        if behind and all(hasattr(s, "behind") for s in self.sources):
            # a backlog: partitions may be hours apart in event time, and a flush would process
            # their events out of order (spurious log_gap alerts, windows judged on half the
            # events). Held events keep their offsets uncommitted: read again on the next start.
            # (Not with a source that cannot re-read, e.g. MQTT: its buffered events would be
            # lost, so those setups still flush.)
            self.log.info("shutdown_without_flush", sources=behind,
                          buffered=len(self.pipeline.order),
                          consequence="buffered events are read again on the next start")
        else:
            self.pipeline.flush()
        # leave time for the last commit, leaving the group and disconnecting
        budget = max(0.1, deadline - time.monotonic() - 2 * FINISH_STEP - CLOSE_SECONDS)
        try:
            async with asyncio.timeout(budget):
                await self.delivery.drained()
                await self.dlq.drained()
                if self.archive is not None:
                    await self.archive.drain()
        except TimeoutError:
            self.log.warning("shutdown_undelivered", alerts=self.delivery.pending,
                             dead_letters=len(self.dlq),
                             archive=self.archive.pending if self.archive else 0,
                             consequence="not committed: read again on the next start")
        # the whole-stream reader's last commit alongside the main one's (each bounded)
        side = asyncio.ensure_future(ws.finish()) if ws is not None else None
        for src in self.sources:  # each bounds its own steps (FINISH_STEP)
            try:
                await src.finish()
            except Exception as err:
                self.log.warning("source_finish_failed", source=src.name,
                                 error=type(err).__name__)
        if side is not None:
            await side
        self.log.info("stopped", processed=self.pipeline.detector.processed,
                      suppressed=self.pipeline.suppressed, rejected=self.pipeline.rejected,
                      pending_alerts=self.delivery.pending)

    async def _close(self) -> None:
        """Disconnect everything at once, within a short bound (the broker may be gone)."""
        closers = [sink.close() for sink in self.sinks]
        if self.whole_stream is not None:
            closers.append(self.whole_stream.close())
        if self.state is not None:
            closers.append(self.state.close())
        if self.producer is not None:
            closers.append(self.producer.stop())
        if self.health is not None:
            closers.append(self.health.close())
        tasks = [asyncio.ensure_future(c) for c in closers]
        _, late = await asyncio.wait(tasks, timeout=CLOSE_SECONDS)
        for t in late:
            t.cancel()
        if late:
            self.log.warning("close_timed_out", clients=len(late))

    # -- periodic -------------------------------------------------------------------------------
    async def _housekeeping(self) -> None:
        m, p = self.metrics, self.pipeline
        engine = self.engine
        mqtt_idle = self.cfg.mqtt.idle_after_seconds if self.cfg.mqtt else 5.0
        last_status = last_sizes = 0.0
        while True:
            now = self._tick = time.monotonic()
            for src in self.sources:
                tick = getattr(src, "tick", None)
                if tick is not None:
                    tick(now, mqtt_idle)
            p.tick()
            m.q_alerts.set(self.delivery.pending)
            m.q_reorder.set(len(p.order))
            if now - last_sizes >= STATE_SIZES_SECONDS:
                last_sizes = now
                m.s_directory.set(len(engine.directory))
                m.s_subjects.set(len(engine.register))
                sizes = engine.window_sizes()  # walked once for both gauges
                m.s_windows.set(sum(sizes))
                m.accounts.set(max(sizes, default=0))
                for rule, n in engine.open_obligations().items():
                    m.obligations_open.labels(rule).set(n)
            wm = p.order.watermark()
            if wm != float("-inf"):
                m.watermark.set(wm)
            for box in self._outboxes():
                m.sink_stalled.labels(box.name).set(box.stalled_for(now))
            ready, _ = self.readiness()
            m.ready.set(1 if ready else 0)
            progressing = self.started.is_set() and all(s.alive(now) for s in self.sources)
            self.notify.tick(progressing)
            if now - last_status >= 10.0:
                last_status = now
                self.notify.status(f"processed {p.detector.processed} events, "
                                   f"{self.delivery.pending} alerts pending")
            await asyncio.sleep(HOUSEKEEPING)

    async def _probe(self) -> None:
        assert self.state is not None
        while True:
            await asyncio.sleep(5.0)
            await self.state.probe()

    # -- health --------------------------------------------------------------------------------
    def alive(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        stall = self.cfg.stall_seconds
        stalled = [s.name for s in self.sources if not s.alive(now)]
        if self.state is not None and self.started.is_set() and not self.state.alive(now):
            stalled.append("state")
        if now - self._tick >= stall:
            stalled.append("housekeeping")
        return not stalled, {"stalled": stalled} if stalled else {}

    def _outboxes(self) -> list[Outbox[Any]]:
        """Every destination's queue: the sinks' and the dead letters'."""
        return [*self.delivery.outboxes, self.dlq]

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        why = []
        if self.stopping:
            why.append("shutting down")
        if self.state is not None:
            if not self.state.loaded.is_set():
                why.append("directory/subjects not read to their end yet")
            if not self.state.broker_ok:
                why.append("kafka broker unreachable")
        if not self.started.is_set():
            why.append("not consuming yet")
        why.extend(f"{s.name} not connected" for s in self.sources if not s.ready)
        now = time.monotonic()
        limit = self.cfg.delivery.stall_seconds
        why.extend(f"sink {box.name} accepted nothing for {box.stalled_for(now):.0f}s "
                   "(offsets wait for it)" for box in self._outboxes()
                   if box.stalled_for(now) >= limit)
        if not self.joined and any(s.name == "kafka" for s in self.sources):
            why.append("no partitions assigned yet (joining the consumer group)")
        detail: dict[str, Any] = {"reasons": why} if why else {}
        assignment = getattr(next((s for s in self.sources if s.name == "kafka"), None),
                             "assigned", None)
        if assignment is not None:
            detail["partitions"] = sorted(assignment)
        return not why, detail

    # -- policy ---------------------------------------------------------------------------------
    def _swap_model(self) -> None:
        """SIGHUP also reloads the model directory (a new ``watchdog train`` output in place);
        a refused model keeps the running one."""
        if not self.cfg.model:
            return
        for stage in self._stages:
            swap = getattr(stage, "swap", None)
            if swap is None:
                continue
            try:
                version = swap(self.cfg.model)
            except (ValueError, OSError) as err:
                self.log.error("model_swap_refused", detail=str(err)[:300],
                               consequence="the previous model stays in force")
            else:
                self.log.info("model_swapped", version=version)

    def _suppressed(self, alert: Alert, exc: PolicyException) -> None:
        """An exception of the policy excused an alert: counted, logged (no personal data:
        the rule, the alert id and the exception's reason) and written to the audit trail."""
        self.metrics.suppressed.labels(alert.rule).inc()
        until = rfc3339(exc.until)
        self.log.info("alert_excused", rule=alert.rule, alert_id=alert.alert_id,
                      reason=exc.reason[:200], until=until)
        if self._audit is not None:
            self._audit.note_excused(alert, exc.reason, until)

    def reload_policy(self) -> None:
        from watchdog.policy import PolicyError, load_policy

        self.notify.reloading()
        try:
            policy = load_policy(self.cfg.policy)
        except PolicyError as err:
            self.notify.ready()
            self.metrics.reloads.labels("error").inc()
            self.log.error("policy_reload_failed", detail=str(err)[:300],
                           consequence="the previous policy stays in force")
            return
        self.engine.set_policy(policy)
        self.metrics.promises.set_policy(policy, self.engine.pseudonymize)
        if self.whole_stream is not None:
            self.whole_stream.set_policy(policy)
        self._swap_model()
        self.notify.ready()
        self.metrics.reloads.labels("ok").inc()
        self.log.info("policy_reloaded", source=str(policy.source),
                      organization=policy.organization)


def _never() -> bool:
    return False


class _ProducerRef:
    """The service's producer, resolved when used (it is started after assembly)."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        producer = self._service.producer
        if producer is None:
            raise ConnectionError("kafka producer not started")
        return getattr(producer, name)
