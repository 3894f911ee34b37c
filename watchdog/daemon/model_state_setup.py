"""Which keeper of the anomaly model's learnt state a service runs, from its config: Kafka
(:mod:`.model_state`), MQTT (:mod:`.model_state_mqtt`) or both (:mod:`.model_state_dual`);
none without ``model_state``, a stage that keeps state, or a source of access events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from watchdog.daemon.config import Config
from watchdog.daemon.logging import get_logger
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.model_state import KeptStage, ModelStateKeeper
from watchdog.daemon.model_state_dual import DualStateKeeper, rereads
from watchdog.daemon.model_state_mqtt import StreamStateKeeper
from watchdog.daemon.pipeline import Pipeline
from watchdog.engine.detector import Stage


def configured(cfg: Config, stages: Sequence[Stage], pipeline: Pipeline, metrics: Metrics,
               settled: Callable[[], bool]) -> ModelStateKeeper | None:
    """The keeper for ``cfg`` (None: no state kept). ``settled``: every alert raised so far
    accepted by every sink, the archive's copy included (a save waits for it)."""
    stage = next((s for s in stages if isinstance(s, KeptStage)), None)
    mqtt = cfg.mqtt if cfg.mqtt is not None and cfg.mqtt.subscribe else None
    if cfg.model_state is None or stage is None or not (cfg.kafka.consume or mqtt):
        return None
    log = get_logger("model_state")
    keeper: ModelStateKeeper
    common: dict[str, Any] = {"stage": stage, "pipeline": pipeline, "metrics": metrics,
                              "log": log}
    if mqtt is None:
        keeper = ModelStateKeeper(cfg.model_state, group=cfg.kafka.group,
                                  topic=cfg.topics.access_logs,
                                  max_records=cfg.model_state.max_reread_records, **common)
    elif not cfg.kafka.consume:
        keeper = StreamStateKeeper(cfg.model_state, mqtt, **common)
    else:
        keeper = DualStateKeeper(cfg.model_state, mqtt, group=cfg.kafka.group,
                                 topic=cfg.topics.access_logs,
                                 max_records=cfg.model_state.max_reread_records, **common)
        if not rereads(mqtt):
            log.warning("model_state_inexact_stop",
                        reason="mqtt.clean_session is true: a message not acknowledged at a "
                               "stop is not delivered again, so a stop processes the reorder "
                               "buffer while Kafka may not have been read as far",
                        consequence="a SIGTERM while Kafka is not idle may make the restored "
                                    "model drop Kafka events it never saw (set "
                                    "mqtt.clean_session: false)")
    keeper.settled = settled
    return keeper
