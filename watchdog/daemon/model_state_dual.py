"""The anomaly model's learnt state across restarts when one instance reads access events from
Kafka **and** MQTT: one file, :class:`~watchdog.daemon.model_state.ModelStateKeeper`'s, whose
header names the Kafka topic, the group, each partition's ``resume`` and the MQTT stream.

What the saved stage holds is what was released to it, a prefix of the reorder buffer's total
order (time, dataset, sequence, id) plus late events: its frontier tells it apart after a
restart, whichever source an event comes from. Three things keep that true with two sources:

1. **MQTT waits for Kafka at the start.** The state is restored at the first assignment (the
   Kafka partitions are then re-read from their ``resume``). MQTT messages that came meanwhile
   would otherwise be released first (their stream alone holds the watermark): the re-read
   Kafka events behind them would be late (out of order), and the restore refused (the stage
   has seen events). So :meth:`DualStateKeeper.load` makes a stream of its own
   (:data:`KAFKA_WAIT`, never idle) hold the watermark back until the first assignment
   (:meth:`DualStateKeeper.assigned`, with or without partitions): nothing is released before
   the re-read starts, which the reorder buffer then merges with MQTT in time order. If the
   group gives nothing for ``WAIT_SECONDS`` (its coordinator away) MQTT goes on; the restore,
   if it comes later, is refused as ``stale`` (logged, counted).
2. **A SIGTERM leaves the buffer as Kafka does.** A stop otherwise processes the buffer
   whenever MQTT is read (``MqttSource.rereads``): the stage would move past Kafka records not
   fetched yet (Kafka behind MQTT, or a partition behind the others), and after the restart
   drop their events as held, without a word (tests/daemon/test_model_state_dual.py). With a
   persistent session (``clean_session: false``) a message not acknowledged is delivered
   again, so the MQTT source here reads again (:func:`rereads`): the stop processes the buffer
   only when every partition and the stream are idle, else leaves Kafka's records uncommitted
   and MQTT's messages unacknowledged, saved after the sinks' drain and before both. With
   ``clean_session: true`` the stop processes it and a restart is exact only if Kafka was
   idle (``model_state_inexact_stop`` at the start).
3. **A kill -9** costs Kafka nothing (re-read from ``resume``, bounded by
   ``max_reread_records``) and the model the MQTT events processed and acknowledged since the
   last save (at most ``every_seconds`` of them): beside Kafka there is no rules' checkpoint
   (``checkpoint_off``) to count them, so ``model_state_restored`` logs ``events_missed:
   null`` with ``mqtt_missed_since`` (the save's age); never a reset.

A file without this stream (a Kafka-only state, another client id or topic filters) or of
another topic or group is ``stale``: the model starts afresh.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec

from watchdog.daemon.metrics import Metrics
from watchdog.daemon.model_state import Header, KeptStage, ModelStateKeeper
from watchdog.daemon.model_state_mqtt import stream_name
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.settings import ModelState, Mqtt
from watchdog.daemon.sources.base import MQTT_STREAM

KAFKA_WAIT = MQTT_STREAM + 1  # the stream that holds MQTT back until the first assignment
WAIT_SECONDS = 60.0  # then MQTT goes on without the Kafka re-read (see the module doc, 1.)


def rereads(m: Mqtt) -> bool:
    """Whether the broker delivers a message not acknowledged at a stop again at the next
    start (a persistent session)."""
    return not m.clean_session


class DualStateKeeper(ModelStateKeeper):
    """The keeper of the model's state for a Kafka topic and an MQTT stream together."""

    def __init__(self, settings: ModelState, m: Mqtt, *, group: str, topic: str,
                 stage: KeptStage, pipeline: Pipeline, metrics: Metrics, log: Any,
                 max_records: int, path: Path | None = None) -> None:
        super().__init__(settings, group=group, topic=topic, stage=stage, pipeline=pipeline,
                         metrics=metrics, log=log, max_records=max_records, path=path)
        self.stream = stream_name(m)
        self.waiting_since: float | None = None  # monotonic; None: MQTT not held back

    def load(self) -> None:
        """Read the file; while it waits for the first assignment, MQTT waits too."""
        super().load()
        saved = self._saved
        if saved is None:
            return
        if saved.header.stream != self.stream:
            self._saved = None
            self._stale("saved without this MQTT stream" if not saved.header.stream
                        else "saved for another MQTT stream")
            return
        self.pipeline.track_stream(KAFKA_WAIT)
        self.waiting_since = time.monotonic()

    def assigned(self) -> None:
        """After every assignment (the partitions opened): the first one ends MQTT's wait, and
        restores the state for MQTT's sake if the group gave no partition (nothing to read
        again, but the stream's events are the model's too)."""
        self._end_wait()
        saved = self._saved
        if saved is not None and self.stage.frontier == float("-inf"):
            self._saved = None
            if saved.header.group != self.group:
                self._stale(f"saved by the consumer group {saved.header.group}")
            else:
                self._restore(saved, reread={}, partitions="none assigned")

    def tick(self, now: float) -> None:
        """From the save loop's clock: no assignment for ``WAIT_SECONDS`` ends the wait."""
        since = self.waiting_since
        if since is not None and now - since >= WAIT_SECONDS:
            self.log.warning("model_state_wait_ended", seconds=round(now - since, 1),
                             consequence="MQTT goes on; if the group assigns later the state "
                                         "is not restored (the model starts afresh)")
            self._end_wait()

    def _end_wait(self) -> None:
        if self.waiting_since is not None:
            self.waiting_since = None
            self.pipeline.close_partitions({KAFKA_WAIT})

    def _restore(self, saved: Any, **said: Any) -> bool:
        # the MQTT events acknowledged after the save are not delivered again: uncountable
        # here (no rules' checkpoint beside Kafka), the time they span is said
        restored = super()._restore(saved, events_missed=None, mqtt_missed_since=round(
            time.time() - saved.header.written_at, 1), **said)
        if restored:
            self.metrics.model_state_missed.set(float("nan"))  # unknown, not none
        return restored

    async def run(self) -> None:
        while self.waiting_since is not None:  # (nothing to save before the restore)
            await asyncio.sleep(1.0)
            self.tick(time.monotonic())
        await super().run()

    def _header(self, resume: dict[int, int]) -> Header:
        return msgspec.structs.replace(super()._header(resume), stream=self.stream)
