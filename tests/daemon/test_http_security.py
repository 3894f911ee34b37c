"""Securing /metrics, /healthz, /readyz: TLS, HTTP basic auth, and their configuration.

A throwaway CA and a server certificate for 127.0.0.1 are made here with ``cryptography``; the
real server (alone, and inside the service) must speak HTTPS only, trust nothing but that CA
on the client side, and answer 401 with a Basic challenge until the right login is given,
while the probes stay open unless ``protect_health`` says otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.daemon.helpers import World, wait_for
from tests.services.procs import free_port
from watchdog.daemon.app import Service
from watchdog.daemon.config import ENV_SECRETS, ConfigError, load_config
from watchdog.daemon.deadletter import MemoryDeadLetters
from watchdog.daemon.health import HealthServer, exposure, is_loopback
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sinks.memory import MemorySink
from watchdog.daemon.sources.memory import MemorySource
from watchdog.systemd import credentials_as_env

PASSWORD = "correct horse battery staple"


# -- a CA and a server certificate ---------------------------------------------------------
@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_key: Path  # a key that does not belong to ``cert``
    encrypted_key: Path  # ``cert``'s key with a passphrase

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder()
          .subject_name(_name("watchdog test CA")).issuer_name(_name("watchdog test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "other.key",
              d / "encrypted.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(_pem_key(key))
    pki.other_key.write_bytes(_pem_key(ec.generate_private_key(ec.SECP256R1())))
    pki.encrypted_key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    return pki


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "watchdog.yaml"
    p.write_text(text)
    return str(p)


class Log:
    """Records what the server logs."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.records.append(("info", event, kw))

    def warning(self, event: str, **kw: Any) -> None:
        self.records.append(("warning", event, kw))


def healthy() -> tuple[bool, dict[str, Any]]:
    return True, {}


async def serving(cfg_text: str, tmp_path: Path, env: dict[str, str] | None = None
                  ) -> tuple[HealthServer, Log]:
    cfg = load_config(write(tmp_path, cfg_text), env=env or {})
    log = Log()
    server = HealthServer.from_config(cfg.http, "127.0.0.1", 0, Metrics(), alive=healthy,
                                      ready=healthy, log=log)
    await server.start()
    return server, log


@pytest.fixture
async def closing() -> AsyncIterator[list[HealthServer]]:
    servers: list[HealthServer] = []
    yield servers
    for s in servers:
        await s.close()


def tls_config(pki: Pki) -> str:
    return f"http: {{tls: {{certfile: '{pki.cert}', keyfile: '{pki.key}'}}}}\n"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- TLS -----------------------------------------------------------------------------------
async def test_https_with_the_ca_works_and_plain_http_fails(
        pki: Pki, tmp_path: Path, closing: list[HealthServer]) -> None:
    server, log = await serving(tls_config(pki), tmp_path)
    closing.append(server)
    url = f"127.0.0.1:{server.port}"
    async with httpx.AsyncClient(verify=pki.client()) as https:
        health = await https.get(f"https://{url}/healthz")
        metrics = await https.get(f"https://{url}/metrics")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert metrics.status_code == 200
    assert "watchdog_build_info" in metrics.text
    async with httpx.AsyncClient() as plain:
        with pytest.raises(httpx.TransportError):
            await plain.get(f"http://{url}/healthz")
    async with httpx.AsyncClient() as untrusting:  # the system CAs do not know ours
        with pytest.raises(httpx.ConnectError):
            await untrusting.get(f"https://{url}/healthz")
    # the server outlived the failed handshakes
    async with httpx.AsyncClient(verify=pki.client()) as https:
        assert (await https.get(f"https://{url}/readyz")).status_code == 200
    assert [r for r in log.records if r[0] == "warning"] == []  # loopback: nothing to warn
    listening = next(kw for level, event, kw in log.records if event == "listening")
    assert (listening["tls"], listening["basic_auth"]) == (True, False)


async def test_a_connection_that_never_handshakes_is_dropped(
        pki: Pki, tmp_path: Path, closing: list[HealthServer]) -> None:
    server, _ = await serving(tls_config(pki), tmp_path)
    closing.append(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:  # say nothing: the handshake times out (5 s) and the server hangs up
        assert await asyncio.wait_for(reader.read(), 15) == b""
    finally:
        writer.close()


# -- basic auth ------------------------------------------------------------------------------
async def test_basic_auth_401_until_the_right_login_probes_stay_open(
        tmp_path: Path, closing: list[HealthServer]) -> None:
    server, _ = await serving("http: {basic_auth: {username: prometheus}}\n", tmp_path,
                              env={"WATCHDOG_HTTP_PASSWORD": PASSWORD})
    closing.append(server)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        anonymous = await http.get("/metrics")
        wrong = await http.get("/metrics", headers=basic("prometheus", "guess"))
        wrong_user = await http.get("/metrics", headers=basic("root", PASSWORD))
        longer = await http.get("/metrics", headers=basic("prometheus", PASSWORD + "x"))
        garbage = await http.get("/metrics", headers={"Authorization": "Basic !!!not-base64"})
        bearer = await http.get("/metrics", headers={"Authorization": f"Bearer {PASSWORD}"})
        unknown = await http.get("/nope")
        right = await http.get("/metrics", headers=basic("prometheus", PASSWORD))
        lower = await http.get("/metrics", headers={
            "authorization": "basic " + base64.b64encode(
                f"prometheus:{PASSWORD}".encode()).decode()})
        via_httpx = await http.get("/metrics", auth=("prometheus", PASSWORD))
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
        head = await http.head("/metrics")
    for r in (anonymous, wrong, wrong_user, longer, garbage, bearer, unknown, head):
        assert r.status_code == 401, r.request.headers
        assert r.headers["www-authenticate"] == 'Basic realm="watchdog", charset="UTF-8"'
    assert "watchdog_build_info" not in anonymous.text
    for r in (right, lower, via_httpx):
        assert r.status_code == 200
        assert "watchdog_build_info" in r.text
    assert (health.status_code, ready.status_code) == (200, 200)  # probes: no login


async def test_protect_health_puts_the_probes_behind_the_login_too(
        tmp_path: Path, closing: list[HealthServer]) -> None:
    server, _ = await serving("http: {basic_auth: {username: ops, protect_health: true}}\n",
                              tmp_path, env={"WATCHDOG_HTTP_PASSWORD": PASSWORD})
    closing.append(server)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await http.get(path)).status_code == 401
            assert (await http.get(path, auth=("ops", PASSWORD))).status_code == 200


async def test_the_service_serves_https_with_a_login(
        world: World, pki: Pki, tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    creds = tmp_path / "creds"  # as systemd's LoadCredential= or a mounted Secret
    creds.mkdir()
    (creds / "http-password").write_text(PASSWORD + "\n")
    cfg = load_config(write(tmp_path, f"""
listen: "{listen}"
http:
  tls: {{certfile: "{pki.cert}", keyfile: "{pki.key}"}}
  basic_auth: {{username: prometheus}}
"""), env=credentials_as_env(ENV_SECRETS, {"CREDENTIALS_DIRECTORY": str(creds)}))

    def factory(p: Pipeline) -> MemorySource:
        src = MemorySource(p, 1)
        src.feed(0, list(world.events))
        return src

    svc = Service(cfg, world.engine(), sinks=[MemorySink()], dead_letters=MemoryDeadLetters(),
                  sources=[factory], kafka=False)
    run = asyncio.create_task(svc.run())
    try:
        await wait_for(lambda: svc.started.is_set(), what="started")
        async with httpx.AsyncClient(base_url=f"https://{listen}", verify=pki.client()) as http:
            anonymous = await http.get("/metrics")
            metrics = await http.get("/metrics", auth=("prometheus", PASSWORD))
            ready = await http.get("/readyz")
    finally:
        svc.request_stop()
        assert await asyncio.wait_for(run, 10) == 0
    assert anonymous.status_code == 401
    assert metrics.status_code == 200
    assert "watchdog_events_total" in metrics.text
    assert ready.status_code == 200


# -- exposure warnings -------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "localhost"])
def test_loopback_is_not_exposed(host: str) -> None:
    assert is_loopback(host)
    assert exposure(host, tls=False, auth=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "watchdog.internal"])
def test_other_addresses_warn_unless_protected(host: str) -> None:
    assert not is_loopback(host)
    assert "NetworkPolicy" in (exposure(host, tls=False, auth=False) or "")
    assert "clear text" in (exposure(host, tls=False, auth=True) or "")
    assert exposure(host, tls=True, auth=False) is None
    assert exposure(host, tls=True, auth=True) is None


def test_an_open_address_is_allowed_by_the_config() -> None:
    cfg = load_config(None, overrides={"listen": "0.0.0.0:9464"}, env={})
    assert (cfg.http.tls, cfg.http.basic_auth) == (None, None)


# -- configuration ---------------------------------------------------------------------------
def test_defaults_are_plain_http_without_login() -> None:
    cfg = load_config(None, env={})
    assert cfg.listen_address == ("127.0.0.1", 9464)
    assert (cfg.http.tls, cfg.http.basic_auth) == (None, None)


def test_the_password_comes_from_the_env_or_the_credential(tmp_path: Path) -> None:
    path = write(tmp_path, "http: {basic_auth: {username: prometheus}}\n")
    cfg = load_config(path, env={"WATCHDOG_HTTP_PASSWORD": "from-env"})
    assert cfg.http.basic_auth is not None
    assert cfg.http.basic_auth.password == "from-env"
    assert cfg.http.basic_auth.protect_health is False
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "http-password").write_text("from-file\n")
    env = credentials_as_env(ENV_SECRETS, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert env == {"WATCHDOG_HTTP_PASSWORD": "from-file"}
    cfg = load_config(path, env=env)
    assert cfg.http.basic_auth is not None
    assert cfg.http.basic_auth.password == "from-file"


@pytest.mark.parametrize(("text", "env", "message"), [
    ("http: {basic_auth: {username: prometheus}}\n", {},
     "http.basic_auth needs a password: set WATCHDOG_HTTP_PASSWORD"),
    ("http: {basic_auth: {username: 'a:b'}}\n", {"WATCHDOG_HTTP_PASSWORD": "p"},
     "http.basic_auth.username: must not contain ':'"),
    ("http: {basic_auth: {usename: x}}\n", {},
     "http.basic_auth.usename: unknown key (did you mean 'username'?)"),
    ("log_level: info\n", {"WATCHDOG_HTTP_PASSWORD": "p"},
     "WATCHDOG_HTTP_PASSWORD is set but http.basic_auth is not configured"),
    ("http: {tls: {certfile: /no/such.pem, keyfile: /no/such.key}}\n", {},
     "http.tls.certfile: /no/such.pem: no such file"),
    ("http: {tls: {certfile: CERT}}\n", {}, "http.tls: object missing required field keyfile"),
    ("http: {tls: {certfile: CERT, keyfile: OTHER}}\n", {}, "http.tls: cannot use certfile"),
    ("http: {tls: {certfile: KEY, keyfile: KEY}}\n", {}, "not a PEM certificate and its key"),
    ("http: {tls: {certfile: CERT, keyfile: LOCKED}}\n", {}, "the key file is encrypted"),
])
def test_http_errors_are_one_line(pki: Pki, tmp_path: Path, text: str, env: dict[str, str],
                                  message: str) -> None:
    text = (text.replace("CERT", str(pki.cert)).replace("OTHER", str(pki.other_key))
            .replace("LOCKED", str(pki.encrypted_key)).replace("KEY", str(pki.key)))
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env=env)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)
