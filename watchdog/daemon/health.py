"""``/metrics``, ``/healthz`` and ``/readyz`` on ``--listen``, served by aiohttp in the loop.

Why in the event loop and not prometheus_client's server in a thread: liveness must mean "the
event loop and the pipeline are making progress", and a server running in the loop itself can
only answer when the loop does; a thread would keep answering from a wedged daemon. Rendering
the exposition takes well under a millisecond at this metric count, so the loop does not
notice. aiohttp does the HTTP (parsing, limits, keep-alive, HEAD, 404/405); this module routes
and guards.

- ``/healthz``: 200 while the pipeline ticks (the loop is alive), else 503.
- ``/readyz``: 200 once the directory and subject topics were read to their end, the consumer
  group gave this instance its partitions and the broker answers; 503 with the reasons
  otherwise (and while shutting down).

Securing them (``http:`` in the config; docs/operations.md, "Securing the endpoints"):

- ``http.tls`` ({certfile, keyfile}): HTTPS only; a plain-HTTP request fails its handshake, and
  a connection that does not complete one within 5 s is dropped.
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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from watchdog.daemon.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:
    from watchdog.daemon.config import Http

Check = Callable[[], tuple[bool, dict[str, Any]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROBES = frozenset({"/healthz", "/readyz"})
REALM = "watchdog"
HANDSHAKE_SECONDS = 5.0


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
        self._runner: web.AppRunner | None = None
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

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=8192)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._probe(self.alive))
        app.router.add_get("/readyz", self._probe(self.ready))
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        # the listening socket is ours (aiohttp's sites do not bound the TLS handshake):
        # runner.server is aiohttp's request handler factory
        loop = asyncio.get_running_loop()
        tls = self.ssl_context
        handler = runner.server
        assert handler is not None  # set by setup()
        self._server = await loop.create_server(
            handler, self.host, self.port, ssl=tls, reuse_address=True,
            ssl_handshake_timeout=HANDSHAKE_SECONDS if tls is not None else None)
        self.port = self._server.sockets[0].getsockname()[1]
        auth = self._login is not None
        self.log.info("listening", address=f"{self.host}:{self.port}",
                      paths=["/metrics", "/healthz", "/readyz"], tls=tls is not None,
                      basic_auth=auth, open_paths=sorted(self.open_paths) if auth else None)
        why = exposure(self.host, tls=tls is not None, auth=auth)
        if why is not None:
            self.log.warning("http_exposed", address=f"{self.host}:{self.port}", detail=why)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()  # closes open connections too
        if server is not None:
            await server.wait_closed()

    # -- handlers ------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in self.open_paths and not self._authorized(
                request.headers.get("Authorization")):
            return web.Response(status=401, text="login required\n", headers={
                "WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})
        return await handler(request)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={
            "Content-Type": CONTENT_TYPE})

    @staticmethod
    def _probe(check: Check) -> Handler:
        async def probe(_request: web.Request) -> web.Response:
            ok, detail = check()
            body = orjson.dumps({"status": "ok" if ok else "unavailable", **detail}) + b"\n"
            return web.Response(status=200 if ok else 503, body=body,
                                content_type="application/json")

        return probe

    def _authorized(self, header: str | None) -> bool:
        if self._login is None:
            return True
        given = b""
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() == "basic":
                try:
                    given = base64.b64decode(token.strip(), validate=True)
                except (binascii.Error, ValueError):
                    given = b""
        # always compare (same work for a missing, malformed or wrong login)
        return hmac.compare_digest(_digest(given), self._login)


def _credentials(username: str, password: str) -> bytes:
    return f"{username}:{password}".encode()


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
