"""``kafka.fetch_max_wait_ms`` reaches both consumers of the Kafka source (the group's, and the
window rebuild's seeker): a broker whose fetch spends the wait on its own storage reads (Tansu
on S3) returns nothing when they take longer, so it must be settable
(tests/faults/test_broker_restart.py)."""

from __future__ import annotations

from typing import Any

import pytest

from watchdog.daemon.config import load_config
from watchdog.daemon.logging import get_logger
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.sources import kafka, kafka_rebuild
from watchdog.daemon.sources.kafka import KafkaSource


class _Consumer:
    """Records the settings each consumer is made with; connects nowhere."""

    made: list[dict[str, Any]]

    def __init__(self, *topics: str, **settings: Any) -> None:
        self.made.append(settings)

    async def start(self) -> None:
        pass

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        pass


@pytest.mark.parametrize(("overrides", "wait"), [({}, 50), ({"kafka.fetch_max_wait_ms": 500}, 500)])
async def test_both_consumers_wait_as_configured(monkeypatch: pytest.MonkeyPatch,
                                                 overrides: dict[str, Any], wait: int) -> None:
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(_Consumer, "made", made, raising=False)
    monkeypatch.setattr(kafka, "AIOKafkaConsumer", _Consumer)
    monkeypatch.setattr(kafka_rebuild, "AIOKafkaConsumer", _Consumer)
    cfg = load_config(None, overrides=overrides)
    src = KafkaSource(cfg, None, Metrics(), get_logger("test"))  # type: ignore[arg-type]
    await src.start()
    assert [m["fetch_max_wait_ms"] for m in made] == [wait, wait]
    assert made[0]["group_id"] == cfg.kafka.group  # the group's consumer, then the seeker
    assert "group_id" not in made[1]
