"""The config file: defaults, precedence, and one-line errors that say where and what."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.alerts.pseudonym import DEMO_KEY
from watchdog.daemon.cli import resolve_key
from watchdog.daemon.config import ConfigError, as_anomaly_service, load_config
from watchdog.daemon.kafka_client import client_kwargs

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "watchdog.yaml"
    p.write_text(text)
    return str(p)


def test_defaults_follow_the_contract() -> None:
    cfg = load_config(None, env={})
    assert cfg.kafka.bootstrap == "localhost:9092"
    assert cfg.kafka.group == "watchdog"
    assert (cfg.topics.access_logs, cfg.topics.directory, cfg.topics.subjects,
            cfg.topics.alerts, cfg.topics.dlq) == (
        "access-logs", "directory", "subjects", "alerts", "access-logs.dlq")
    assert cfg.listen_address == ("127.0.0.1", 9464)
    assert cfg.sinks.kafka is not None
    assert cfg.sinks.alertmanager is None


def test_flags_override_file_and_env_overrides_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, """
kafka: {bootstrap: "file:9092", security_protocol: SASL_SSL,
        sasl: {mechanism: SCRAM-SHA-256, username: u}}
pseudonym_key: from-the-file-0123456789
listen: 127.0.0.1:1
""")
    cfg = load_config(path, overrides={"kafka.bootstrap": "flag:9092", "listen": None},
                      env={"WATCHDOG_KAFKA_SASL_PASSWORD": "s3cret",
                           "WATCHDOG_PSEUDONYM_KEY": "from-the-env-0123456789"})
    assert cfg.kafka.bootstrap == "flag:9092"
    assert cfg.listen == "127.0.0.1:1"  # a flag not given changes nothing
    assert cfg.kafka.sasl is not None
    assert cfg.kafka.sasl.password == "s3cret"
    assert cfg.pseudonym_key == "from-the-env-0123456789"
    kw = client_kwargs(cfg.kafka)
    assert kw["sasl_mechanism"] == "SCRAM-SHA-256"  # passed through to aiokafka as is
    assert kw["sasl_plain_username"] == "u"
    assert kw["sasl_plain_password"] == "s3cret"
    assert kw["security_protocol"] == "SASL_SSL"
    assert kw["ssl_context"] is not None


def test_sinks_listed_replace_the_default(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "sinks: {webhook: {url: 'https://hooks.example/x'}}"),
                      env={"WATCHDOG_WEBHOOK_TOKEN": "t0ken"})
    assert cfg.sinks.kafka is None
    assert cfg.sinks.webhook is not None
    assert cfg.sinks.webhook.token == "t0ken"


@pytest.mark.parametrize(("text", "message"), [
    ("kafka:\n  bootstrp: x\n", "kafka.bootstrp: unknown key (did you mean 'bootstrap'?)"),
    ("sinks:\n  alertmanagr: {url: 'http://x'}\n",
     "sinks.alertmanagr: unknown key (did you mean 'alertmanager'?)"),
    ("kafka: {session_timeout_ms: soon}\n", "kafka.session_timeout_ms: expected int, got str"),
    ("detection: {lateness_seconds: -1}\n", "detection.lateness_seconds: expected float >= 0"),
    ("mqtt: {subscribe: [1]}\n", "mqtt.subscribe[0]: expected str, got int"),
    ("listen: localhost\n", "'localhost' is not HOST:PORT"),
    ("sinks: {}\n", "sinks: no sink configured"),
    ("sinks: {mqtt: {}}\n", "sinks.mqtt needs an mqtt: section"),
    ("sinks: {webhook: {url: 'ftp://x'}}\n", "sinks.webhook.url: 'ftp://x' is not an http(s) URL"),
    ("kafka: {sasl: {username: u, password: p}}\n", "kafka.sasl needs kafka.security_protocol"),
    ("kafka: {security_protocol: SASL_SSL}\n", "needs kafka.sasl.username and password"),
    ("kafka: {tls: {cafile: /no/such/ca.pem}}\n", "kafka.tls.cafile: /no/such/ca.pem: no such"),
    ("kafka: {heartbeat_interval_ms: 20000}\n", "heartbeat_interval_ms must be below"),
    ("kafka: {consume: false}\n", "there is no source of access events"),
    ("- a list\n", "the top level must be a mapping"),
    ("kafka: [\n", "not valid YAML (line 2)"),
])
def test_errors_name_the_file_the_path_and_the_problem(tmp_path: Path, text: str,
                                                       message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    text = str(err.value)
    assert text.startswith(path + ": ")
    assert message in text
    assert "\n" not in text


def test_a_secret_for_an_unconfigured_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match="WATCHDOG_MQTT_PASSWORD is set but mqtt is not"):
        load_config(None, env={"WATCHDOG_MQTT_PASSWORD": "x"})


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("/no/such/watchdog.yaml", env={})


def test_pseudonym_key_rules() -> None:
    assert resolve_key("a-real-secret-key-0123", demo=False) == b"a-real-secret-key-0123"
    assert resolve_key(None, demo=True) == DEMO_KEY
    with pytest.raises(ValueError, match="no pseudonym key: set WATCHDOG_PSEUDONYM_KEY"):
        resolve_key(None, demo=False)
    with pytest.raises(ValueError, match="public demo key"):
        resolve_key(DEMO_KEY.decode(), demo=False)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        resolve_key("short", demo=False)


def test_run_refuses_to_start_without_a_key_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "watchdog", "run"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("watchdog: error: no pseudonym key")


def test_run_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka: {bootstrp: x}\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "watchdog", "run", "--config", path],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"watchdog: error: {path}: kafka.bootstrp: unknown key "
                                   "(did you mean 'bootstrap'?)")


def test_the_example_config_is_the_defaults() -> None:
    example = ROOT / "watchdog" / "daemon" / "watchdog.example.yaml"
    assert load_config(str(example), env={}) == load_config(None, env={})


def test_only_splits_the_work_and_the_anomaly_service_needs_a_model(tmp_path: Path) -> None:
    path = write(tmp_path, "detection: {only: anomaly}\n")
    with pytest.raises(ConfigError, match=r"detection\.only anomaly needs a model"):
        load_config(path)
    cfg = load_config(path, overrides={"model": "models/default"})
    assert not cfg.detection.rules
    assert load_config(None, overrides={"detection.only": "rules"}).detection.rules
    assert load_config(None).detection.only is None  # by default one service does both


def test_run_only_anomaly_with_a_refused_model_fails_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "WATCHDOG_PSEUDONYM_KEY": "test-key-0123456789abcdef"}
    proc = subprocess.run([sys.executable, "-m", "watchdog", "run", "--only", "anomaly",
                           "--model", str(tmp_path / "nowhere")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("watchdog: error: ")
    assert "nowhere" in proc.stderr


@pytest.mark.parametrize("make", ["directory", "binary"])
def test_an_unreadable_credential_is_a_one_line_error(tmp_path: Path, make: str) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    if make == "directory":  # unreadable even by root (CI runs as root: chmod 000 is not)
        (creds / "mqtt-password").mkdir()
    else:
        (creds / "mqtt-password").write_bytes(b"\xff\xfe secret")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    proc = subprocess.run([sys.executable, "-m", "watchdog", "run"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("watchdog: error: ")
    assert "Traceback" not in proc.stderr
    if make == "directory":
        assert "mqtt-password: cannot read: Is a directory" in lines[0]
    else:
        assert "not UTF-8" in lines[0]


def test_the_anomaly_service_reads_under_identities_of_its_own() -> None:
    """Beside the rules service with the same file: its own consumer group, MQTT client id
    (an id in use is taken over by the broker) and share names (one share name splits the
    messages between the two); plain topic filters are unchanged."""
    cfg = load_config(overrides={"mqtt.subscribe": [
        "$share/wd/logs/+/access", "logs/hr/access", "$share/x", "$shared/a/b"]})
    assert cfg.mqtt is not None
    a = as_anomaly_service(cfg)
    assert a.kafka.group == cfg.kafka.group + ".anomaly"
    assert a.mqtt is not None
    assert a.mqtt.client_id == cfg.mqtt.client_id + "-anomaly"
    assert a.mqtt.subscribe == [
        "$share/wd-anomaly/logs/+/access", "logs/hr/access", "$share/x", "$shared/a/b"]
    assert as_anomaly_service(load_config()).mqtt is None
