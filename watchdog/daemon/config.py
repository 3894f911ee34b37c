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
from typing import Any

import msgspec
import yaml

# the schema lives in .settings; importers of this module's names keep working
from watchdog.daemon.settings import (
    SASL,
    TLS,
    AlertmanagerSink,
    Archive,
    AuditSink,
    BasicAuth,
    Config,
    ConfigError,
    Delivery,
    Detection,
    Http,
    HttpTLS,
    JsonlSink,
    Kafka,
    KafkaSink,
    MetricsConfig,
    Mqtt,
    MqttCheckpoint,
    MqttSink,
    Sinks,
    Topics,
    WebhookSink,
    as_anomaly_service,
    in_group,
    parse_listen,
)

__all__ = [
    "ENV_SECRETS",
    "SASL",
    "TLS",
    "AlertmanagerSink",
    "Archive",
    "AuditSink",
    "BasicAuth",
    "Config",
    "ConfigError",
    "Delivery",
    "Detection",
    "Http",
    "HttpTLS",
    "JsonlSink",
    "Kafka",
    "KafkaSink",
    "MetricsConfig",
    "Mqtt",
    "MqttCheckpoint",
    "MqttSink",
    "Sinks",
    "Topics",
    "WebhookSink",
    "as_anomaly_service",
    "in_group",
    "load_config",
    "parse_listen",
]

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
