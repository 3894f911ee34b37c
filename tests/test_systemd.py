"""watchdog.systemd against a real AF_UNIX datagram socket (what systemd listens on)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchdog.systemd import (
    Notifier,
    credential,
    credential_name,
    credentials_as_env,
    pseudonym_key_from_credentials,
    watchdog_interval,
)


def _recv(sock: socket.socket) -> list[str]:
    sock.settimeout(2.0)
    data = sock.recv(4096)
    return data.decode().split("\n")


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        yield str(path), sock
    finally:
        sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[str, socket.socket]]:
    name = f"watchdog-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        yield "@" + name, sock
    finally:
        sock.close()


def test_from_env_unset_is_none() -> None:
    assert Notifier.from_env({}) is None
    assert Notifier.from_env({"NOTIFY_SOCKET": ""}) is None
    assert Notifier.from_env({"NOTIFY_SOCKET": "relative/path"}) is None


def test_messages_over_a_path_socket(path_socket: tuple[str, socket.socket]) -> None:
    address, server = path_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier is not None
    with notifier:
        assert notifier.ready(status="consuming 3 topics")
        assert _recv(server) == ["READY=1", "STATUS=consuming 3 topics"]
        assert notifier.watchdog()
        assert _recv(server) == ["WATCHDOG=1"]
        assert notifier.reloading()
        reload_msg = _recv(server)
        assert reload_msg[0] == "RELOADING=1"
        assert reload_msg[1].startswith("MONOTONIC_USEC=")
        assert int(reload_msg[1].split("=", 1)[1]) > 0
        assert notifier.status("policy reloaded")
        assert _recv(server) == ["STATUS=policy reloaded"]
        assert notifier.stopping()
        assert _recv(server) == ["STOPPING=1"]


def test_abstract_namespace(abstract_socket: tuple[str, socket.socket]) -> None:
    address, server = abstract_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier is not None
    with notifier:
        assert notifier.ready()
        assert _recv(server) == ["READY=1"]


def test_reads_os_environ(
    path_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, server = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    notifier = Notifier.from_env()
    assert notifier is not None
    with notifier:
        notifier.watchdog()
        assert _recv(server) == ["WATCHDOG=1"]


def test_send_failure_is_reported_not_raised(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    with notifier:
        assert notifier.ready() is False
        assert notifier.watchdog() is False


def test_rejects_multiline_assignment(path_socket: tuple[str, socket.socket]) -> None:
    with Notifier(path_socket[0]) as notifier, pytest.raises(ValueError, match="KEY=VALUE"):
        notifier.status("two\nlines")


def test_watchdog_interval() -> None:
    pid = str(os.getpid())
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 30.0
    # Inherited from a parent that systemd watches: not ours to ping.
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "x"}) is None


def test_credentials(tmp_path: Path) -> None:
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert pseudonym_key_from_credentials({}) is None
    assert pseudonym_key_from_credentials(env) is None
    (tmp_path / "pseudonym-key").write_bytes(b"0123456789abcdef0123456789abcdef\n")
    assert pseudonym_key_from_credentials(env) == b"0123456789abcdef0123456789abcdef"
    (tmp_path / "pseudonym-key").write_bytes(b"key-with-crlf-0123456789\r\n")
    assert pseudonym_key_from_credentials(env) == b"key-with-crlf-0123456789"
    (tmp_path / "pseudonym-key").write_bytes(b"")
    assert pseudonym_key_from_credentials(env) is None
    (tmp_path / "kafka-sasl-password").write_bytes(b"s3cret")
    assert credential("kafka-sasl-password", env) == b"s3cret"
    with pytest.raises(ValueError, match="credential name"):
        credential("../etc/passwd", env)


def test_credentials_as_env(tmp_path: Path) -> None:
    assert credential_name("WATCHDOG_PSEUDONYM_KEY") == "pseudonym-key"
    assert credential_name("WATCHDOG_KAFKA_SASL_PASSWORD") == "kafka-sasl-password"
    (tmp_path / "pseudonym-key").write_text("from-the-credential-0123456789\n")
    (tmp_path / "kafka-sasl-password").write_text("s3cret\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    names = ["WATCHDOG_PSEUDONYM_KEY", "WATCHDOG_KAFKA_SASL_PASSWORD", "WATCHDOG_MQTT_PASSWORD"]
    assert credentials_as_env(names, env) == {
        "WATCHDOG_PSEUDONYM_KEY": "from-the-credential-0123456789",
        "WATCHDOG_KAFKA_SASL_PASSWORD": "s3cret",
    }
    # an exported variable wins over the credential
    env["WATCHDOG_PSEUDONYM_KEY"] = "exported-0123456789abcdef"
    assert credentials_as_env(names, env) == {"WATCHDOG_KAFKA_SASL_PASSWORD": "s3cret"}
    assert credentials_as_env(names, {}) == {}
