"""Debian Prometheus on 127.0.0.1:free-port with a temp TSDB dir."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from .procs import require_binary, wait_ready
from .server import Server


class Prometheus(Server):
    """``with Prometheus(scrape_targets=["127.0.0.1:8000"]) as prom: prom.query("up")``.

    - ``scrape_targets``: host:port list scraped as job ``targets`` (Prometheus
      scrapes itself too, as job ``prometheus``).
    - ``rules``: rule-file YAML text (groups: ...), loaded as rules.yml.
    - ``alertmanager``: host:port of an Alertmanager to send alerts to.
    - ``config``: a complete config dict instead of the generated one.
    Scrape and evaluation intervals default to 1 s.
    """

    name = "prometheus"
    ready_timeout = 20.0
    ready_path = "/-/ready"

    def __init__(
        self,
        *,
        scrape_targets: Sequence[str] = (),
        rules: str | None = None,
        alertmanager: str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        config: dict[str, Any] | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(port=port)
        self.scrape_targets = list(scrape_targets)
        self.rules = rules
        self.alertmanager = alertmanager
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.config = config

    def build_config(self, rules_path: Path | None) -> dict[str, Any]:
        if self.config is not None:
            return self.config
        scrape_configs: list[dict[str, Any]] = [
            {"job_name": "prometheus", "static_configs": [{"targets": [self.address]}]}
        ]
        if self.scrape_targets:
            scrape_configs.append(
                {"job_name": "targets", "static_configs": [{"targets": self.scrape_targets}]}
            )
        cfg: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": scrape_configs,
        }
        if rules_path is not None:
            cfg["rule_files"] = [str(rules_path)]
        if self.alertmanager:
            cfg["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]
            }
        return cfg

    def command(self) -> list[str]:
        binary = require_binary("prometheus")
        tmp = self.workdir()
        rules_path = None
        if self.rules is not None:
            rules_path = tmp / "rules.yml"
            rules_path.write_text(self.rules)
        config_path = tmp / "prometheus.yml"
        # JSON is valid YAML; no YAML writer needed.
        config_path.write_text(json.dumps(self.build_config(rules_path), indent=2))
        return [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ]

    # -- API helpers ---------------------------------------------------------
    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns ``data.result`` (raises on a PromQL error)."""
        resp = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5.0)
        body = resp.json()
        if body.get("status") != "success":
            raise ValueError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for_result(self, expr: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns at least one series."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = self.query(expr)
            return bool(found)

        wait_ready(check, timeout=timeout, interval=0.1, what=f"query {expr!r}", proc=self.proc)
        return found
