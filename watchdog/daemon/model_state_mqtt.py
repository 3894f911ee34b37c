"""The anomaly model's learnt state across restarts with an MQTT source (no Kafka source).

An acknowledged MQTT message is not delivered again, so the Kafka way (re-read the log from
where the saved state stops) is not open. The rules' windows are kept by the checkpoint of the
detector's state (:mod:`watchdog.daemon.checkpoint`, every few seconds); the model's state is
too large for that cadence (~1.9 KB per account: 36 MB at 20,000 accounts) and keeps its own:
:class:`~watchdog.daemon.model_state.ModelStateKeeper`'s file, saves (every
``model_state.every_seconds`` and at shutdown, after the last release to the stage and before
the last acknowledgements) and outcomes, restored at the start before anything is read (beside
the checkpoint's restore, not at a Kafka assignment).

**A clean stop is exact**: the shutdown processes the reorder buffer (MQTT cannot read it
again), drains the stage and saves it; the final checkpoint, taken after, holds the same
events (nothing is released in between) and only then are the messages acknowledged. At the
next start the events the broker delivers again (not acknowledged: a checkpoint or the save
failed) or the checkpoint's restored buffer releases, which the stage holds already, are
dropped by its frontier; the rest are fed to it: it sees every event once, in order.

**A crash costs the events processed since the last save** (at most ``every_seconds`` of them):
acknowledged once a checkpoint held them, they are not delivered again, and the model goes on
without having learnt them; not a reset. The file says how many events the detector had
processed at the save (``processed``); the checkpoint restored says how many it had: the
difference is logged in ``model_state_restored`` (``events_missed``) and set in
``watchdog_model_state_missed_events``. Without a checkpoint (``mqtt.checkpoint: null``, or the
anomaly service, ``detection.only: anomaly``, which keeps none) the count is unknown (logged
as null): messages are then acknowledged as soon as they are handled, the loss is bounded the
same way.

The file belongs to one stream: its ``topic`` is ``mqtt <client id> <topic filters>``, and a
state of another stream (or of a Kafka topic) is ``stale``. Default path
``anomaly-mqtt-<client_id>.state`` under ``$STATE_DIRECTORY``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from watchdog.daemon.checkpoint import Checkpoints
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.model_state import Header, KeptStage, ModelStateKeeper, default_path
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.settings import ModelState, Mqtt


def stream_name(m: Mqtt) -> str:
    """What the file's ``topic`` says of an MQTT stream (a Kafka topic has no space)."""
    return f"mqtt {m.client_id} {' '.join(m.subscribe)}"


def missed(checkpointed: int | None, saved: int | None) -> int | None:
    """Events the detector processed after the model's save, as far as the restored rules'
    checkpoint says (``checkpointed``: its count; None: no checkpoint restored); None: unknown.
    A save later than the checkpoint (checkpoints wait while an alert waits for a sink) missed
    none: what the broker delivers again that it holds is dropped by the stage's frontier."""
    if checkpointed is None or saved is None:
        return None
    return max(0, checkpointed - saved)


class StreamStateKeeper(ModelStateKeeper):
    """The keeper of the model's state for an MQTT stream (see the module doc)."""

    def __init__(self, settings: ModelState, m: Mqtt, *, stage: KeptStage, pipeline: Pipeline,
                 metrics: Metrics, log: Any, path: Path | None = None) -> None:
        super().__init__(settings, group="", topic=stream_name(m), stage=stage,
                         pipeline=pipeline, metrics=metrics, log=log, max_records=0,
                         path=path or default_path(settings, f"mqtt-{m.client_id}"))
        # the rules' checkpoints, restored before this state (set by the service), if any
        self.checkpoints: Checkpoints | None = None

    def load(self) -> None:
        """Read the file and restore it into the stage now (before the source starts)."""
        super().load()
        saved, self._saved = self._saved, None
        if saved is None:
            return
        ck = self.checkpoints
        n = missed(self.pipeline.detector.processed if ck is not None and ck.restored else None,
                   saved.header.processed)
        if self._restore(saved, events_missed=n):  # (None: unknown, no checkpoint restored)
            # unknown is not "none missed": NaN (a panel shows no value, not 0)
            self.metrics.model_state_missed.set(float("nan") if n is None else n)

    def _header(self, resume: dict[int, int]) -> Header:
        return Header(self.topic, "", time.time(), {}, self.pipeline.detector.processed)
