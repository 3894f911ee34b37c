"""The daemon's settings: what each section of the YAML file may hold, with its defaults
(msgspec structs, validated by :func:`watchdog.daemon.config.load_config`)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class ConfigError(ValueError):
    """A configuration that cannot be used; ``str()`` is one line."""


class _Base(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TLS(_Base):
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    password: str | None = None  # of the key file; env WATCHDOG_KAFKA_TLS_PASSWORD
    check_hostname: bool = True


class SASL(_Base):
    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    username: str | None = None  # env WATCHDOG_KAFKA_SASL_USERNAME
    password: str | None = None  # env WATCHDOG_KAFKA_SASL_PASSWORD


class Kafka(_Base):
    bootstrap: NonEmpty = "localhost:9092"
    client_id: NonEmpty = "watchdog"
    group: NonEmpty = "watchdog"
    consume: bool = True  # false: access events come only over MQTT
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    tls: TLS | None = None
    sasl: SASL | None = None
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: PositiveInt = 10_000
    heartbeat_interval_ms: PositiveInt = 3_000
    request_timeout_ms: PositiveInt = 30_000
    max_poll_records: PositiveInt = 2_000
    poll_timeout_ms: PositiveInt = 200
    # how long the broker may hold a fetch that finds nothing new (sources/kafka.py says why
    # so short); a broker whose fetch spends this wait on its own storage reads (Tansu on S3)
    # returns nothing when they take longer, so it needs more
    fetch_max_wait_ms: PositiveInt = 50
    commit_interval_seconds: Positive = 1.0
    # a partition with lag 0 and no new record for this long stops holding the watermark
    idle_after_seconds: Positive = 5.0
    # when this many events wait in the reorder buffer (partitions far apart in event time
    # while a backlog is read), pause the partitions ahead of the watermark until it halves
    max_buffered_events: PositiveInt = 100_000
    # after a rebalance/restart, re-read at most this many records per partition
    rebuild_max_records: Annotated[int, msgspec.Meta(ge=0)] = 1_000_000
    idempotence: Literal["auto", "on", "off"] = "auto"


class Topics(_Base):
    access_logs: NonEmpty = "access-logs"
    directory: NonEmpty = "directory"
    subjects: NonEmpty = "subjects"
    accounts: NonEmpty = "accounts"  # 1.1: the identity provider's account records
    alerts: NonEmpty = "alerts"
    dlq: NonEmpty = "access-logs.dlq"


class MqttCheckpoint(_Base):
    """The detector's state, written so that windows built from acknowledged messages survive
    a crash (watchdog.daemon.checkpoint); a message is acknowledged once one holds its event."""

    # relative: under $STATE_DIRECTORY (systemd) or else the working directory; default
    # mqtt-<client_id>.checkpoint
    path: NonEmpty | None = None
    # at least this often: each message waits for the next checkpoint to be acknowledged, and
    # the broker sends at most 65535 unacknowledged (the reorder buffer's included)
    every_messages: Annotated[int, msgspec.Meta(gt=0, le=50_000)] = 10_000
    every_seconds: Positive = 5.0


class Mqtt(_Base):
    host: NonEmpty = "127.0.0.1"
    port: Port = 1883
    client_id: NonEmpty = "watchdog"
    username: str | None = None  # env WATCHDOG_MQTT_USERNAME
    password: str | None = None  # env WATCHDOG_MQTT_PASSWORD
    tls: TLS | None = None
    # topic filters carrying access events; empty: MQTT is used only by the MQTT sink
    subscribe: list[NonEmpty] = msgspec.field(default_factory=list)
    qos: Literal[0, 1, 2] = 1
    clean_session: bool = False  # a persistent session: the broker keeps QoS 1 messages
    # how long the broker keeps the session (and unacknowledged messages) after a disconnect
    session_expiry_seconds: PositiveInt = 7 * 86400
    keepalive: PositiveInt = 30
    idle_after_seconds: Positive = 5.0
    # null: none (a crash loses the windows built from messages acknowledged before it)
    checkpoint: MqttCheckpoint | None = msgspec.field(default_factory=MqttCheckpoint)


class ModelState(_Base):
    """The anomaly model's learnt state (baselines, usual days, accumulated risk), saved so that
    a restart goes on with it (watchdog.daemon.model_state, .model_state_mqtt, and
    .model_state_dual for Kafka and MQTT both)."""

    # relative: under $STATE_DIRECTORY (systemd) or else the working directory; default
    # anomaly-<kafka.group>.state (MQTT: anomaly-mqtt-<mqtt.client_id>.state; the anomaly
    # service reads as <client_id>-anomaly)
    path: NonEmpty | None = None
    # at least this often, and at shutdown; a crash re-reads the records since the last save
    # (MQTT: the model misses the events processed since, acknowledged)
    every_seconds: Positive = 300.0
    # a state saved further back than this many records of a partition (before its committed
    # offset) is stale: the model starts afresh rather than re-read them
    max_reread_records: PositiveInt = 10_000_000


class KafkaSink(_Base):
    topic: str | None = None  # default: topics.alerts


class AlertmanagerSink(_Base):
    url: NonEmpty  # base URL, e.g. http://127.0.0.1:9093
    timeout_seconds: Positive = 5.0
    resolve_after_seconds: Positive = 3600.0
    generator_url: str | None = None
    token: str | None = None  # bearer; env WATCHDOG_ALERTMANAGER_TOKEN


class WebhookSink(_Base):
    url: NonEmpty
    timeout_seconds: Positive = 5.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    token: str | None = None  # bearer; env WATCHDOG_WEBHOOK_TOKEN


class MqttSink(_Base):
    topic: NonEmpty = "watchdog/alerts"
    qos: Literal[0, 1, 2] = 1


class JsonlSink(_Base):
    path: NonEmpty


class AuditSink(_Base):
    path: NonEmpty  # hash-chained JSONL (watchdog.audit); its head is PATH.head
    fsync: bool = True  # each batch durable before it counts as delivered
    # HMAC key of a keyed chain: env WATCHDOG_AUDIT_KEY (credential audit-key); none: unkeyed
    key: str | None = None


class Sinks(_Base):
    kafka: KafkaSink | None = None
    alertmanager: AlertmanagerSink | None = None
    webhook: WebhookSink | None = None
    mqtt: MqttSink | None = None
    jsonl: JsonlSink | None = None
    audit: AuditSink | None = None


class Archive(_Base):
    """Every access event, record and alert kept as Parquet (watchdog.archive)."""

    location: NonEmpty  # a directory, or s3://bucket/prefix[?endpoint=URL&region=R]
    writer: str | None = None  # this instance's manifest chain; default: the host name
    flush_seconds: Positive = 10.0  # a segment at least this often (offsets wait for it)
    segment_rows: PositiveInt = 200_000
    max_pending: PositiveInt = 500_000  # documents not yet written: sources pause above
    retention_days: PositiveInt | None = None  # default: the policy's longest retention
    checkpoint_every: PositiveInt = 500  # flushes between manifest checkpoints
    # access events' data.subject_ids stored at each flush (segment format 1, which watchdog
    # releases before format 3 read); false: left to readers and `archive compact` (format 3,
    # ~1/5 less of the archive writer's CPU)
    store_subject_ids: bool = False
    s3_access_key_id: str | None = None  # env WATCHDOG_ARCHIVE_S3_ACCESS_KEY_ID
    s3_secret_access_key: str | None = None  # env WATCHDOG_ARCHIVE_S3_SECRET_ACCESS_KEY


class HttpTLS(_Base):
    certfile: NonEmpty  # PEM: the server certificate (and chain)
    keyfile: NonEmpty  # PEM: its private key, unencrypted


class BasicAuth(_Base):
    username: NonEmpty
    password: str | None = None  # env WATCHDOG_HTTP_PASSWORD (credential http-password)
    protect_health: bool = False  # true: /healthz and /readyz need the login too


class Http(_Base):
    """How the endpoints on ``listen`` are protected (watchdog.daemon.health)."""

    tls: HttpTLS | None = None
    basic_auth: BasicAuth | None = None


class Delivery(_Base):
    max_pending: PositiveInt = 10_000  # alerts not yet accepted by every sink: pause above
    batch_max: PositiveInt = 500
    retry_initial_seconds: Positive = 0.2
    retry_max_seconds: Positive = 30.0
    dedupe_alert_ids: PositiveInt = 100_000
    # a sink (or the dead-letter topic) that accepts nothing this long while items wait turns
    # /readyz to 503 (watchdog_sink_stalled_seconds; alert WatchdogSinkStalled): commits wait
    stall_seconds: Positive = 300.0


class Detection(_Base):
    # disorder tolerated within one partition (seconds of event time); alerts wait this long
    lateness_seconds: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    # an event further ahead of the present than this (a wrong clock) is held apart: it moves
    # no watermark (watchdog_events_future_total); nearer, it counts as the stream moving on
    future_seconds: Positive = 3600.0
    # one instance does both (default); or, to give the anomaly model its own cores, one
    # service runs the rules and another (consumer group ``<kafka.group>.anomaly``) the model
    only: Literal["rules", "anomaly"] | None = None
    # the anomaly service reads each partition only as far as the rules service has committed
    # (its risk then counts the rules' alerts as one process does: daemon/rules_follow.py);
    # when no rules offset has moved this long while records wait, it reads on alone. 0: off
    follow_rules_seconds: Annotated[float, msgspec.Meta(ge=0)] = 300.0

    @property
    def rules(self) -> bool:
        return self.only != "anomaly"


class MetricsConfig(_Base):
    # the datasets (event.dataset) that may be metric label values: any other is "other" (an
    # event's dataset is not trusted to be a fit label: it could carry anything)
    datasets: list[NonEmpty] = msgspec.field(default_factory=list)


class Config(_Base):
    listen: NonEmpty = "127.0.0.1:9464"
    policy: str | None = None
    model: str | None = None
    labels: str | None = None  # analysts' labels (watchdog label), re-read when changed
    pseudonym_key: str | None = None  # prefer env WATCHDOG_PSEUDONYM_KEY
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_timeout_seconds: Positive = 8.0
    stall_seconds: Positive = 30.0  # /healthz fails when the pipeline has not ticked this long
    http: Http = msgspec.field(default_factory=Http)
    kafka: Kafka = msgspec.field(default_factory=Kafka)
    topics: Topics = msgspec.field(default_factory=Topics)
    mqtt: Mqtt | None = None
    sinks: Sinks = msgspec.field(default_factory=lambda: Sinks(kafka=KafkaSink()))
    delivery: Delivery = msgspec.field(default_factory=Delivery)
    detection: Detection = msgspec.field(default_factory=Detection)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    archive: Archive | None = None
    # null: a restart starts the model's learning afresh (days without day-scale evidence)
    model_state: ModelState | None = msgspec.field(default_factory=ModelState)

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen, "listen")


def in_group(cfg: Config, suffix: str) -> Config:
    """``cfg`` consuming in the group ``<kafka.group><suffix>``: a second reader of every event
    (the whole-stream reader, the anomaly service) that commits for itself."""
    return msgspec.structs.replace(cfg, kafka=msgspec.structs.replace(
        cfg.kafka, group=cfg.kafka.group + suffix))


ANOMALY_SUFFIX = "anomaly"  # what the anomaly service adds to the identities it reads under


def as_anomaly_service(cfg: Config) -> Config:
    """``cfg`` as the anomaly service (``detection.only: anomaly``) reads: every event again,
    beside the rules service with the same configuration, so under identities of its own: the
    consumer group ``<kafka.group>.anomaly``; the MQTT client id ``<client_id>-anomaly`` (an id
    in use is taken over by the broker: the two services would disconnect each other and share
    one session) and shared subscriptions ``$share/<name>-anomaly/...`` (the same share name
    would split the messages between the services, each seeing a part)."""
    cfg = in_group(cfg, "." + ANOMALY_SUFFIX)
    m = cfg.mqtt
    if m is None:
        return cfg
    return msgspec.structs.replace(cfg, mqtt=msgspec.structs.replace(
        m, client_id=f"{m.client_id}-{ANOMALY_SUFFIX}",
        subscribe=[_own_share(f, ANOMALY_SUFFIX) for f in m.subscribe]))


def _own_share(topic_filter: str, suffix: str) -> str:
    """``$share/<name>/<filter>`` -> ``$share/<name>-<suffix>/<filter>``; others unchanged."""
    head, sep, rest = topic_filter.partition("/")
    if head != "$share" or not sep:
        return topic_filter
    name, sep, flt = rest.partition("/")
    return f"$share/{name}-{suffix}/{flt}" if sep else topic_filter


_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})$")


def parse_listen(value: str, where: str) -> tuple[str, int]:
    m = _LISTEN.match(value)
    if not m or int(m["port"]) > 65535:
        raise ConfigError(f"{where}: '{value}' is not HOST:PORT (e.g. 127.0.0.1:9464)")
    return (m["v6"] or m["host"] or "127.0.0.1"), int(m["port"])
