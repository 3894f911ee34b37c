"""Debian Alertmanager on 127.0.0.1:free-port, clustering off, temp storage."""

from __future__ import annotations

import json
from typing import Any

import httpx

from .procs import require_binary
from .server import Server


class Alertmanager(Server):
    """``with Alertmanager(webhook_url="http://127.0.0.1:8080/hook") as am: am.url``.

    Without ``webhook_url`` alerts go to a receiver with no integrations.
    ``group_wait``/``group_interval`` default to 1 s so a webhook sees alerts
    quickly. ``config`` replaces the generated config dict entirely.
    """

    name = "alertmanager"
    ready_timeout = 20.0
    ready_path = "/-/ready"

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
        super().__init__(port=port)
        self.webhook_url = webhook_url
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.config = config

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

    def command(self) -> list[str]:
        binary = require_binary("prometheus-alertmanager")
        tmp = self.workdir()
        config_path = tmp / "alertmanager.yml"
        config_path.write_text(json.dumps(self.build_config(), indent=2))
        return [
            binary,
            f"--config.file={config_path}",
            f"--storage.path={tmp / 'data'}",
            f"--web.listen-address={self.address}",
            # Empty: no gossip listener (the default is 0.0.0.0:9094).
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """GET /api/v2/alerts (sync; use httpx.AsyncClient on ``url`` in async code)."""
        resp = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=5.0)
        resp.raise_for_status()
        result: list[dict[str, Any]] = resp.json()
        return result
