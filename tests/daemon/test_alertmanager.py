"""Alerts reach a real Alertmanager, which forwards them to a webhook receiver.

The daemon runs with the in-memory source (no broker needed for this part) and the
Alertmanager sink from its config. Every alert arrives as its own Alertmanager alert (labels
identify an alert there, so ``alert_id`` is a label), named by its rule, with severity and
``service="watchdog"`` as labels; the account stays in the annotations, never in labels.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from tests.daemon.helpers import HookReceiver, World, wait_for
from tests.services.exposition import metric_value
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.deadletter import MemoryDeadLetters
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.memory import MemorySource

pytestmark = pytest.mark.integration


async def test_alertmanager_receives_and_forwards(alertmanager_factory, world: World,
                                                  tmp_path: Path) -> None:
    async with HookReceiver() as hook:
        am = await asyncio.to_thread(alertmanager_factory, webhook_url=hook.url,
                                     group_wait="1s", group_interval="1s")
        path = tmp_path / "watchdog.yaml"
        path.write_text(yaml.safe_dump({"sinks": {"alertmanager": {"url": am.url}}}))
        cfg = load_config(str(path))

        def source(p: Pipeline) -> MemorySource:
            src = MemorySource(p, 2)
            for part, docs in world.partitioned(2).items():
                src.feed(part, docs)
            return src

        svc = Service(cfg, world.engine(), sources=[source], dead_letters=MemoryDeadLetters(),
                      kafka=False, listen=False)
        run = asyncio.create_task(svc.run())
        try:
            def forwarded() -> set[str]:
                return {a["labels"]["alert_id"] for b in hook.bodies for a in b["alerts"]}

            await wait_for(lambda: forwarded() >= set(world.expected), within=30,
                           what="Alertmanager forwarding every alert to the webhook")
        finally:
            svc.request_stop()
            assert await asyncio.wait_for(run, 15) == 0

    got = {a["labels"]["alert_id"]: a for b in hook.bodies for a in b["alerts"]}
    assert set(got) == set(world.expected)
    users = {World.user_of(e) for e in world.events}
    for alert in got.values():
        labels, notes = alert["labels"], alert["annotations"]
        assert labels["alertname"] == labels["rule"]
        assert labels["service"] == "watchdog"
        assert labels["severity"] in {"critical", "high", "medium", "low"}
        assert not set(labels.values()) & users, "no account id in labels"
        assert notes["alert_id"] == labels["alert_id"]
        assert notes["summary"]
        assert "user_id" in notes
    assert metric_value(svc.metrics.sink_sent.labels("alertmanager")) == len(world.expected)
