"""The sinks a configuration names, built in a fixed order (Kafka, Alertmanager, webhook, MQTT,
JSONL, audit trail)."""

from __future__ import annotations

from typing import Any

from watchdog.daemon.config import Config
from watchdog.daemon.sinks.alertmanager import AlertmanagerSink
from watchdog.daemon.sinks.audit import AuditSink
from watchdog.daemon.sinks.base import Sink
from watchdog.daemon.sinks.jsonl import JsonlSink
from watchdog.daemon.sinks.kafka import KafkaSink
from watchdog.daemon.sinks.mqtt import MqttSink
from watchdog.daemon.sinks.webhook import WebhookSink


def configured_sinks(cfg: Config, producer: Any) -> list[Sink]:
    """``producer``: the service's Kafka producer (a :class:`ProducerRef`: it is started after
    the sinks are built)."""
    s, out = cfg.sinks, list[Sink]()
    if s.kafka is not None:
        out.append(KafkaSink(producer, s.kafka.topic or cfg.topics.alerts))
    if s.alertmanager is not None:
        out.append(AlertmanagerSink(s.alertmanager))
    if s.webhook is not None:
        out.append(WebhookSink(s.webhook))
    if s.mqtt is not None and cfg.mqtt is not None:
        out.append(MqttSink(cfg.mqtt, s.mqtt))
    if s.jsonl is not None:
        out.append(JsonlSink(s.jsonl.path))
    if s.audit is not None:
        key = s.audit.key.encode() if s.audit.key else None
        # the anomaly service appends beside the rules service's lock (one chain)
        out.append(AuditSink(s.audit.path, fsync=s.audit.fsync, key=key,
                             owner=cfg.detection.rules))
    return out


class ProducerRef:
    """A producer resolved when used: ``owner.producer``, started after assembly."""

    def __init__(self, owner: Any) -> None:
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        producer = self._owner.producer
        if producer is None:
            raise ConnectionError("kafka producer not started")
        return getattr(producer, name)
