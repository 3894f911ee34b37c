"""``/metrics``, ``/healthz`` and ``/readyz`` on ``--listen``: a tiny asyncio HTTP/1.1 server.

Why not prometheus_client's WSGI server in a thread: liveness must mean "the event loop and
the pipeline are making progress", and a server running in the loop itself can only answer
when the loop does; a thread would keep answering from a wedged daemon. Rendering the
exposition takes well under a millisecond at this metric count, so the loop does not notice.
No keep-alive, GET/HEAD only, requests capped at 8 KiB: enough for Prometheus and kubelet.

- ``/healthz``: 200 while the pipeline ticks (the loop is alive), else 503.
- ``/readyz``: 200 once the directory and subject topics were read to their end and the
  broker answers; 503 with the reason otherwise (and while shutting down).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from watchdog.daemon.metrics import CONTENT_TYPE, Metrics

Check = Callable[[], tuple[bool, dict[str, Any]]]


class HealthServer:
    def __init__(self, host: str, port: int, metrics: Metrics, *, alive: Check,
                 ready: Check, log: Any) -> None:
        self.host = host
        self.port = port
        self.metrics = metrics
        self.alive = alive
        self.ready = ready
        self.log = log
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port,
                                                  limit=8192)
        sock = self._server.sockets[0].getsockname()
        self.port = sock[1]
        self.log.info("listening", address=f"{self.host}:{self.port}",
                      paths=["/metrics", "/healthz", "/readyz"])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5.0):
                line = await reader.readline()
                while await reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, path = parts[0], parts[1].split("?", 1)[0]
            status, ctype, body = self._route(method, path)
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            writer.write(head if method == "HEAD" else head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

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
