"""``/metrics``, ``/healthz`` and ``/readyz`` on ``--listen``: a tiny asyncio HTTP/1.1 server.

Why not prometheus_client's WSGI server in a thread: liveness must mean "the event loop and
the pipeline are making progress", and a server running in the loop itself can only answer
when the loop does; a thread would keep answering from a wedged daemon. Rendering the
exposition takes well under a millisecond at this metric count, so the loop does not notice.
No keep-alive, GET/HEAD only, requests capped at 8 KiB: enough for Prometheus and kubelet.

- ``/healthz``: 200 while the pipeline ticks (the loop is alive), else 503.
- ``/readyz``: 200 once the directory and subject topics were read to their end and the
  broker answers; 503 with the reason otherwise (and while shutting down).

Securing them (``http:`` in the config; docs/operations.md, "Securing the endpoints"):

- ``http.tls`` ({certfile, keyfile}): HTTPS only; a plain-HTTP request fails its handshake.
- ``http.basic_auth`` ({username, protect_health}; password from ``WATCHDOG_HTTP_PASSWORD``
  or the credential ``http-password``): every path needs the login (401 with
  ``WWW-Authenticate`` otherwise) except the probes ``/healthz`` and ``/readyz``, which stay
  open unless ``protect_health: true``: kubelet, systemd and load-balancer probes cannot
  easily send a password, and the probes tell nothing but "up/ready and why not".
  Credentials are compared in constant time (``hmac.compare_digest`` of SHA-256 digests, so
  not even their lengths leak).
- A listen address that is not loopback with neither TLS nor basic auth is allowed (behind a
  NetworkPolicy or firewall, as on Kubernetes) but logged as a warning at start.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from watchdog.daemon.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:
    from watchdog.daemon.config import Http

Check = Callable[[], tuple[bool, dict[str, Any]]]
PROBES = frozenset({"/healthz", "/readyz"})
REALM = "watchdog"
MAX_HEADERS = 64


def server_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """The TLS context of the endpoints (TLS 1.2+); ssl.SSLError/OSError/ValueError if
    unusable. An encrypted key is refused rather than prompting on a terminal."""
    def no_prompt() -> str:
        raise ValueError("the key file is encrypted; give an unencrypted key (mode 0600)")

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile, password=no_prompt)
    return ctx


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure(host: str, *, tls: bool, auth: bool) -> str | None:
    """Why serving on ``host`` this way deserves a warning at start, or None."""
    if is_loopback(host):
        return None
    if not tls and not auth:
        return ("not loopback, without http.tls or http.basic_auth: anyone who can reach it "
                "reads /metrics; keep it behind a NetworkPolicy or firewall")
    if auth and not tls:
        return ("not loopback, basic auth without http.tls: the password crosses the network "
                "in clear text")
    return None


class HealthServer:
    def __init__(self, host: str, port: int, metrics: Metrics, *, alive: Check,
                 ready: Check, log: Any, ssl_context: ssl.SSLContext | None = None,
                 login: tuple[str, str] | None = None, protect_health: bool = False) -> None:
        self.host = host
        self.port = port
        self.metrics = metrics
        self.alive = alive
        self.ready = ready
        self.log = log
        self.ssl_context = ssl_context
        self._login = None if login is None else _digest(_credentials(*login))
        self.open_paths = frozenset() if login is None or protect_health else PROBES
        self._server: asyncio.Server | None = None

    @classmethod
    def from_config(cls, http: Http, host: str, port: int, metrics: Metrics, *,
                    alive: Check, ready: Check, log: Any) -> HealthServer:
        auth = http.basic_auth
        return cls(host, port, metrics, alive=alive, ready=ready, log=log,
                   ssl_context=(server_context(http.tls.certfile, http.tls.keyfile)
                                if http.tls is not None else None),
                   login=(auth.username, auth.password or "") if auth is not None else None,
                   protect_health=auth is not None and auth.protect_health)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=8192, ssl=self.ssl_context,
            ssl_handshake_timeout=5.0 if self.ssl_context is not None else None)
        sock = self._server.sockets[0].getsockname()
        self.port = sock[1]
        tls, auth = self.ssl_context is not None, self._login is not None
        self.log.info("listening", address=f"{self.host}:{self.port}",
                      paths=["/metrics", "/healthz", "/readyz"], tls=tls, basic_auth=auth,
                      open_paths=sorted(self.open_paths) if auth else None)
        why = exposure(self.host, tls=tls, auth=auth)
        if why is not None:
            self.log.warning("http_exposed", address=f"{self.host}:{self.port}", detail=why)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            authorization = None
            async with asyncio.timeout(5.0):
                line = await reader.readline()
                for _ in range(MAX_HEADERS):
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.partition(b":")
                    if name.strip().lower() == b"authorization":
                        authorization = value.strip()
                else:
                    return  # too many header lines
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, path = parts[0], parts[1].split("?", 1)[0]
            extra = ""
            if path not in self.open_paths and not self._authorized(authorization):
                status, ctype, body = "401 Unauthorized", "text/plain", b"login required\n"
                extra = f'WWW-Authenticate: Basic realm="{REALM}", charset="UTF-8"\r\n'
            else:
                status, ctype, body = self._route(method, path)
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n{extra}"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            writer.write(head if method == "HEAD" else head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    def _authorized(self, header: bytes | None) -> bool:
        if self._login is None:
            return True
        given = b""
        if header is not None:
            scheme, _, token = header.partition(b" ")
            if scheme.lower() == b"basic":
                try:
                    given = base64.b64decode(token.strip(), validate=True)
                except (binascii.Error, ValueError):
                    given = b""
        # always compare (same work for a missing, malformed or wrong login)
        return hmac.compare_digest(_digest(given), self._login)

    def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE, self.metrics.exposition()
        if path in ("/healthz", "/readyz"):
            ok, detail = (self.alive if path == "/healthz" else self.ready)()
            body = orjson.dumps({"status": "ok" if ok else "unavailable", **detail}) + b"\n"
            return ("200 OK" if ok else "503 Service Unavailable"), "application/json", body
        return "404 Not Found", "text/plain", b"try /metrics, /healthz or /readyz\n"


def _credentials(username: str, password: str) -> bytes:
    return f"{username}:{password}".encode()


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
