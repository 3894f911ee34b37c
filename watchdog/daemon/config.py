"""The daemon's configuration: one YAML file, validated with clear one-line errors.

Precedence: built-in defaults < the YAML file < command-line flags < ``WATCHDOG_*`` environment
variables. The environment only carries secrets (see :data:`ENV_SECRETS`), so that keys and
passwords stay out of files that get committed and out of ``ps`` output.

Every error names the file, the dotted path inside it and what is wrong, e.g.
``watchdog.yaml: kafka.bootstrp: unknown key (did you mean 'bootstrap'?)``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

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

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen, "listen")


def in_group(cfg: Config, suffix: str) -> Config:
    """``cfg`` consuming in the group ``<kafka.group><suffix>``: a second reader of every event
    (the whole-stream reader, the anomaly service) that commits for itself."""
    return msgspec.structs.replace(cfg, kafka=msgspec.structs.replace(
        cfg.kafka, group=cfg.kafka.group + suffix))


# env var -> (path of the setting, the section that must exist for it)
ENV_SECRETS: dict[str, tuple[str, ...]] = {
    "WATCHDOG_PSEUDONYM_KEY": ("pseudonym_key",),
    "WATCHDOG_KAFKA_SASL_USERNAME": ("kafka", "sasl", "username"),
    "WATCHDOG_KAFKA_SASL_PASSWORD": ("kafka", "sasl", "password"),
    "WATCHDOG_KAFKA_TLS_PASSWORD": ("kafka", "tls", "password"),
    "WATCHDOG_MQTT_USERNAME": ("mqtt", "username"),
    "WATCHDOG_MQTT_PASSWORD": ("mqtt", "password"),
    "WATCHDOG_WEBHOOK_TOKEN": ("sinks", "webhook", "token"),
    "WATCHDOG_ALERTMANAGER_TOKEN": ("sinks", "alertmanager", "token"),
    "WATCHDOG_HTTP_PASSWORD": ("http", "basic_auth", "password"),
    "WATCHDOG_AUDIT_KEY": ("sinks", "audit", "key"),
    "WATCHDOG_ARCHIVE_S3_ACCESS_KEY_ID": ("archive", "s3_access_key_id"),
    "WATCHDOG_ARCHIVE_S3_SECRET_ACCESS_KEY": ("archive", "s3_secret_access_key"),
}

_ALWAYS_PRESENT = {"kafka"}  # sections with defaults; the others are off unless configured

_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})$")


def parse_listen(value: str, where: str) -> tuple[str, int]:
    m = _LISTEN.match(value)
    if not m or int(m["port"]) > 65535:
        raise ConfigError(f"{where}: '{value}' is not HOST:PORT (e.g. 127.0.0.1:9464)")
    return (m["v6"] or m["host"] or "127.0.0.1"), int(m["port"])


def load_config(
    path: str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read ``path`` (None: defaults), apply flag ``overrides`` ({"kafka.bootstrap": ...}) and
    the secrets from ``env`` (default ``os.environ``); validate; raise ConfigError."""
    source = path or "config"
    doc: Any = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"{path}: not valid YAML{at}: "
                              f"{getattr(err, 'problem', None) or err}") from None
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set(doc, tuple(dotted.split(".")), value, source, "flag")
    for var, keys in ENV_SECRETS.items():
        value = (os.environ if env is None else env).get(var)
        if value:
            _set(doc, keys, value, source, var)
    try:
        cfg = msgspec.convert(doc, Config, strict=True)
    except msgspec.ValidationError as err:
        raise ConfigError(f"{source}: {_explain(str(err))}") from None
    _check(cfg, source)
    return cfg


def _set(doc: dict[str, Any], keys: tuple[str, ...], value: Any, source: str, by: str) -> None:
    node = doc
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            # a secret for an optional section that is not configured is a mistake worth saying
            if by.startswith("WATCHDOG_") and key not in _ALWAYS_PRESENT:
                raise ConfigError(f"{source}: {by} is set but {'.'.join(keys[:-1])} "
                                  "is not configured")
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {'.'.join(keys[:i + 1])}: must be a mapping")
        node = child
    node[keys[-1]] = value


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>[^`]+)`")


def _explain(msg: str) -> str:
    m = _AT.search(msg)
    path = _dotted(m["path"]) if m else ""
    text = msg[: m.start()] if m else msg
    u = _UNKNOWN.match(text)
    if u:
        key = u["key"]
        allowed = _fields_at(path)
        near = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        full = f"{path}.{key}" if path else key
        return f"{full}: unknown key{hint}"
    text = text.replace("`", "")
    text = text[:1].lower() + text[1:]
    return f"{path or 'top level'}: {text}"


def _dotted(jsonpath: str) -> str:
    # "$.kafka.tls" -> "kafka.tls"; "$.mqtt.subscribe[0]" -> "mqtt.subscribe[0]"
    return jsonpath.lstrip(".")


def _fields_at(path: str) -> list[str]:
    typ: Any = Config
    for part in filter(None, re.sub(r"\[\d+\]", "", path).split(".")):
        fields = {f.name: f.type for f in msgspec.structs.fields(typ)}
        t = fields.get(part)
        typ = next((a for a in getattr(t, "__args__", (t,))
                    if isinstance(a, type) and issubclass(a, msgspec.Struct)), None)
        if typ is None:
            return []
    return [f.name for f in msgspec.structs.fields(typ)]


def _check(cfg: Config, source: str) -> None:
    """Rules across fields that a type cannot say."""
    parse_listen(cfg.listen, f"{source}: listen")
    k = cfg.kafka
    if cfg.detection.only == "anomaly" and not cfg.model:
        raise ConfigError(f"{source}: detection.only anomaly needs a model (model: or --model)")
    if k.heartbeat_interval_ms >= k.session_timeout_ms:
        raise ConfigError(f"{source}: kafka.heartbeat_interval_ms must be below "
                          "kafka.session_timeout_ms")
    if k.sasl is not None and not k.security_protocol.startswith("SASL"):
        raise ConfigError(f"{source}: kafka.sasl needs kafka.security_protocol SASL_SSL or "
                          "SASL_PLAINTEXT")
    if k.security_protocol.startswith("SASL") and (
            k.sasl is None or not k.sasl.username or not k.sasl.password):
        raise ConfigError(f"{source}: kafka.security_protocol {k.security_protocol} needs "
                          "kafka.sasl.username and password (WATCHDOG_KAFKA_SASL_PASSWORD)")
    for where, tls in (("kafka.tls", k.tls), ("mqtt.tls", cfg.mqtt and cfg.mqtt.tls)):
        for name in ("cafile", "certfile", "keyfile"):
            f = getattr(tls, name, None) if tls else None
            if f and not Path(f).is_file():
                raise ConfigError(f"{source}: {where}.{name}: {f}: no such file")
    _check_http(cfg.http, source)
    s = cfg.sinks
    if not any((s.kafka, s.alertmanager, s.webhook, s.mqtt, s.jsonl, s.audit)):
        raise ConfigError(f"{source}: sinks: no sink configured; alerts would go nowhere")
    if s.mqtt is not None and cfg.mqtt is None:
        raise ConfigError(f"{source}: sinks.mqtt needs an mqtt: section (host, port)")
    for name, sink in (("alertmanager", s.alertmanager), ("webhook", s.webhook)):
        if sink is not None and not sink.url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: sinks.{name}.url: '{sink.url}' is not an http(s) URL")
    if s.audit is not None and s.jsonl is not None and (
            Path(s.audit.path).resolve() == Path(s.jsonl.path).resolve()):
        raise ConfigError(f"{source}: sinks.audit.path: the same file as sinks.jsonl.path")
    if cfg.sinks.audit is not None and cfg.sinks.audit.key is not None and len(
            cfg.sinks.audit.key.encode()) < 16:
        raise ConfigError(f"{source}: sinks.audit.key (WATCHDOG_AUDIT_KEY, credential "
                          "audit-key): at least 16 bytes")
    if not k.consume and not (cfg.mqtt and cfg.mqtt.subscribe):
        raise ConfigError(f"{source}: kafka.consume is false and mqtt.subscribe is empty: "
                          "there is no source of access events")


def _check_http(http: Http, source: str) -> None:
    if http.tls is not None:
        for name in ("certfile", "keyfile"):
            f = getattr(http.tls, name)
            if not Path(f).is_file():
                raise ConfigError(f"{source}: http.tls.{name}: {f}: no such file")
        from watchdog.daemon.health import server_context

        try:
            server_context(http.tls.certfile, http.tls.keyfile)
        except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
            reason = getattr(err, "reason", None) or getattr(err, "strerror", None) or err
            if str(reason).startswith("[SSL] PEM lib"):
                reason = "not a PEM certificate and its key"
            raise ConfigError(f"{source}: http.tls: cannot use certfile {http.tls.certfile} "
                              f"with keyfile {http.tls.keyfile}: {reason}") from None
    auth = http.basic_auth
    if auth is not None:
        if ":" in auth.username:
            raise ConfigError(f"{source}: http.basic_auth.username: must not contain ':'")
        if not auth.password:
            raise ConfigError(f"{source}: http.basic_auth needs a password: set "
                              "WATCHDOG_HTTP_PASSWORD (or the credential http-password)")
