"""Debian Alertmanager on 127.0.0.1:free-port, clustering off, temp storage."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .procs import HOST, ManagedProcess, free_port, require_binary, wait_for_http


class Alertmanager:
    """``with Alertmanager(webhook_url="http://127.0.0.1:8080/hook") as am: am.url``.

    Without ``webhook_url`` alerts go to a receiver with no integrations.
    ``group_wait``/``group_interval`` default to 1 s so a webhook sees alerts
    quickly. ``config`` replaces the generated config dict entirely.
    """

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
        config: dict[str, Any] | None = None,
        port: int | None = None,
    ) -> None:
        self.host = HOST
        self.port = port or free_port()
        self.address = f"{self.host}:{self.port}"
        self.url = f"http://{self.address}"
        self.webhook_url = webhook_url
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.config = config
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.proc: ManagedProcess | None = None
        self.startup_seconds = 0.0

    def build_config(self) -> dict[str, Any]:
        if self.config is not None:
            return self.config
        receiver: dict[str, Any] = {"name": "default"}
        if self.webhook_url:
            receiver["webhook_configs"] = [{"url": self.webhook_url, "send_resolved": True}]
        return {
            "route": {
                "receiver": "default",
                "group_by": ["alertname"],
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [receiver],
        }

    def start(self) -> Alertmanager:
        binary = require_binary("prometheus-alertmanager")
        self._tmp = tempfile.TemporaryDirectory(prefix="alertmanager-")
        tmp = Path(self._tmp.name)
        config_path = tmp / "alertmanager.yml"
        config_path.write_text(json.dumps(self.build_config(), indent=2))
        self.proc = ManagedProcess(
            "alertmanager",
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.path={tmp / 'data'}",
                f"--web.listen-address={self.address}",
                # Empty: no gossip listener (the default is 0.0.0.0:9094).
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            cwd=tmp,
        )
        t0 = time.monotonic()
        self.proc.start()
        wait_for_http(f"{self.url}/-/ready", timeout=20.0, proc=self.proc)
        self.startup_seconds = time.monotonic() - t0
        return self

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """GET /api/v2/alerts (sync; use httpx.AsyncClient on ``url`` in async code)."""
        resp = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=5.0)
        resp.raise_for_status()
        result: list[dict[str, Any]] = resp.json()
        return result

    def __enter__(self) -> Alertmanager:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.proc is not None:
                self.proc.__exit__(exc_type, exc, tb)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
