"""The service: every part of the daemon as named tasks of one ``asyncio.TaskGroup``.

Start-up: serve ``/metrics`` and health at once; connect to Kafka (retrying while the broker is
away: not ready meanwhile); read the directory and subject topics to their end; then consume
access events (Kafka group and/or MQTT). Ready from there on. While the group gives this
instance partition 0 and not every partition, it also runs the whole-stream reader
(:mod:`.sources.whole_stream`: ``log_gap`` over every partition).

Shutdown (SIGTERM/SIGINT), within ``shutdown_timeout_seconds``: stop consuming, flush the
Detector if every partition is idle (else its buffer is read again at the next start), wait for
every sink to accept the alerts, commit offsets, disconnect, exit 0. If a sink stays down, what
it has not accepted is not committed: those events are read again on the next start
(:mod:`.shutdown`). SIGHUP reloads the policy (windows and state are kept:
:mod:`.policy_reload`). Periodic work: :mod:`.housekeeping`; health: :mod:`.service_health`.

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
from watchdog.daemon import checkpoint, model_state_setup
from watchdog.daemon.config import Config, as_anomaly_service
from watchdog.daemon.deadletter import (
    PRODUCER_MAX_REQUEST,
    DeadLetter,
    DeadLetters,
    KafkaDeadLetters,
    accepted,
)
from watchdog.daemon.delivery import Delivery, Outbox, RetryPolicy
from watchdog.daemon.health import HealthServer
from watchdog.daemon.housekeeping import housekeeping, probe
from watchdog.daemon.kafka_client import client_kwargs, connection_problem, start_producer
from watchdog.daemon.labels_watch import LabelsWatch
from watchdog.daemon.logging import get_logger
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.model_state_dual import DualStateKeeper, rereads
from watchdog.daemon.model_state_mqtt import StreamStateKeeper
from watchdog.daemon.notify import Notify
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.policy_reload import PolicyReload
from watchdog.daemon.rule_alert_feed import configured_feed
from watchdog.daemon.rules_follow import configured_follower
from watchdog.daemon.service_health import alive, readiness
from watchdog.daemon.shutdown import close, shutdown
from watchdog.daemon.sinks.audit import AuditSink
from watchdog.daemon.sinks.base import Sink
from watchdog.daemon.sinks.configured import ProducerRef, configured_sinks
from watchdog.daemon.sources.base import Source
from watchdog.daemon.sources.kafka import KafkaSource
from watchdog.daemon.sources.kafka_assignor import StateAssignor
from watchdog.daemon.sources.kafka_state import StateTopics
from watchdog.daemon.sources.mqtt import MqttSource
from watchdog.daemon.sources.whole_stream import WholeStream
from watchdog.engine.detector import Stage
from watchdog.engine.engine import Engine

if TYPE_CHECKING:
    from watchdog.daemon.sinks.archive import DaemonArchive

SourceFactory = Callable[[Pipeline], Source]
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
        rules_group = cfg.kafka.group  # (the anomaly service follows its offsets)
        if not cfg.detection.rules:
            cfg = as_anomaly_service(cfg)  # it reads every event too, under its own identities
        self.cfg = cfg
        self.engine = engine
        self.metrics = metrics or Metrics()
        self.metrics.name_datasets(cfg.metrics.datasets)
        self.metrics.set_detection(cfg.detection.only or "all")
        if not cfg.detection.rules:
            # the anomaly service never runs the whole-stream reader: not exported, so the alert
            # on a missing reader counts the rules service's instances only
            self.metrics.registry.unregister(self.metrics.whole_stream_reader)
        self.metrics.promises.set_policy(engine.policy, engine.pseudonymize)
        self.log = get_logger("service")
        self.notify = Notify(self.log)
        self.stop_requested = asyncio.Event()
        self.started = asyncio.Event()  # consuming (ready once state is loaded)
        self.stopping = False
        self.producer: Any = None  # started in _connect (it needs the running loop)
        self.tick_at = time.monotonic()  # the housekeeping loop's last tick
        self.source_tasks: list[asyncio.Task[None]] = []
        self._congested = False
        self.joined = False  # the consumer group assigned partitions at least once

        m, retry = self.metrics, RetryPolicy(cfg.delivery.retry_initial_seconds,
                                             cfg.delivery.retry_max_seconds)
        self.sinks: list[Sink] = (list(sinks) if sinks is not None
                                  else configured_sinks(cfg, ProducerRef(self)))
        self.delivery = Delivery(self.sinks, m, get_logger("delivery"),
                                 batch_max=cfg.delivery.batch_max, retry=retry)
        dl = dead_letters or KafkaDeadLetters(ProducerRef(self), cfg.topics.dlq)
        self.dlq: Outbox[DeadLetter] = Outbox(
            dl.name, dl.send, accepted, m, get_logger("delivery"),
            batch_max=cfg.delivery.batch_max, timeout=dl.timeout, retry=retry)
        self.pipeline = Pipeline(engine, self.delivery, self.dlq, m, get_logger("pipeline"),
                                 stages=stages, lateness=cfg.detection.lateness_seconds,
                                 future=cfg.detection.future_seconds,
                                 dedupe_alert_ids=cfg.delivery.dedupe_alert_ids,
                                 rules=cfg.detection.rules)
        self.policy = PolicyReload(cfg, engine, m, self.notify, self.log, stages=stages,
                                   audit=next((s for s in self.sinks
                                               if isinstance(s, AuditSink)), None))
        engine.on_suppressed = self.policy.excused
        self.labels = (LabelsWatch(cfg.labels, stages, get_logger("labels"))
                       if cfg.labels else None)
        if self.labels is not None:
            self.labels.check(time.monotonic())  # in force from the first event
        self.state: StateTopics | None = None
        self.whole_stream: WholeStream | None = None  # with the configured Kafka source
        if kafka:
            self.state = StateTopics(cfg, engine, self.dlq, m, get_logger("state"))
        self.archive = self._configured_archive()
        # (the archive's copy of an alert too: the sinks may have it while a crash loses it)
        self.model_state = model_state_setup.configured(
            cfg, stages, self.pipeline, m, lambda: self.delivery.pending == 0 and (
                self.archive is None or self.archive.alerts_pending == 0),
        ) if sources is None and kafka else None
        self.rule_alerts = (configured_feed(cfg, stages, client_kwargs(cfg.kafka), m, get_logger(
            "rule_alerts")) if kafka and sources is None else None)  # the split risk's input
        self.follower = configured_follower(cfg, rules_group, self.rule_alerts,
                                            client_kwargs(cfg.kafka), m, get_logger("follow"))
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
                if isinstance(self.model_state, DualStateKeeper):
                    self.model_state.assigned()  # (MQTT waited for it)
                if ws is not None:
                    ws.on_view(src)

            def kafka(p: Pipeline) -> Source:
                src = KafkaSource(cfg, p, self.metrics, get_logger("kafka"),
                                  congested=self.congested, on_assigned=assigned,
                                  on_whole_commit=ws.record if ws else None)
                keeper = self.model_state
                if self.follower is not None:
                    src.follow = self.follower.follow
                    self.follower.partitions = lambda: src.assigned
                if keeper is not None:
                    src.restore_from = keeper.on_assigned
                    src.assignor = StateAssignor(lambda: {src.topic: keeper.claims()},
                                                 max_behind=keeper.max_records)
                return src

            out.append(kafka)
        if cfg.mqtt is not None and cfg.mqtt.subscribe:
            mq = cfg.mqtt

            def mqtt(p: Pipeline) -> Source:
                ck = checkpoint.for_mqtt(mq, consume_kafka=cfg.kafka.consume,
                                         rules=cfg.detection.rules, detector=p.detector,
                                         metrics=self.metrics, log=get_logger("checkpoint"),
                                         settled=lambda: self.delivery.pending == 0)
                if isinstance(self.model_state, StreamStateKeeper):
                    self.model_state.checkpoints = ck  # (restored: it says how far it got)
                src = MqttSource(mq, p, get_logger("mqtt"), stall=cfg.stall_seconds,
                                 congested=self.congested, checkpoints=ck)
                if isinstance(self.model_state, DualStateKeeper):
                    # a stop leaves the buffer as Kafka does (model_state_dual.py, 2.)
                    src.rereads = rereads(mq)
                return src

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
        spawn(housekeeping(self), "housekeeping")
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
                spawn(probe(self.state), "broker-probe")
                if not await self._until(self.state.loaded.wait()):
                    return
                # records from now on open their obligations whatever the checkpoint judged
                self.engine.due.floor = float("-inf")
            # the archive's store opened and the state records written before the stream starts
            if self.archive is not None and not await self._until(self.archive.ready()):
                return
            if self.model_state is not None:  # MQTT: restored now; Kafka: at the assignment
                self.model_state.load()
                spawn(self.model_state.run(), "model-state")
            if self.rule_alerts is not None:
                spawn(self.rule_alerts.run(), "rule-alerts")
            if self.follower is not None:
                spawn(self.follower.run(), "follow-rules")
            gc_policy.settle()  # state loaded: keep the collector off it
            if self.whole_stream is not None:
                spawn(self.whole_stream.run(), "whole-stream")
            for src in self.sources:
                await src.start()
                self.source_tasks.append(tg.create_task(src.run(), name=f"source:{src.name}"))
            self.started.set()
            self.notify.ready()
            self.log.info("started", only=self.cfg.detection.only or "rules and model",
                          group=self.cfg.kafka.group if self.cfg.kafka.consume else None,
                          sources=[s.name for s in self.sources],
                          sinks=[s.name for s in self.sinks],
                          lateness_seconds=self.cfg.detection.lateness_seconds)
            await self.stop_requested.wait()
            await shutdown(self)
        finally:
            for task in background:
                task.cancel()
            await close(self)

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

    # -- health --------------------------------------------------------------------------------
    def alive(self) -> tuple[bool, dict[str, Any]]:
        return alive(self)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return readiness(self)

    def outboxes(self) -> list[Outbox[Any]]:
        """Every destination's queue: the sinks' and the dead letters'."""
        return [*self.delivery.outboxes, self.dlq]

    # -- policy ---------------------------------------------------------------------------------
    def reload_policy(self) -> None:
        self.policy.whole_stream = self.whole_stream
        self.policy.reload()
