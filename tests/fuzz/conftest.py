"""Fixtures of the live anomaly tests (test_fuzz_live_broker_anomaly.py, the MQTT ones,
test_live_broker_anomaly_seek.py): the broker of each module, and replay's alerts over the
stream, computed once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz._anomaly_stream import Alerts, expected_alerts
from tests.services.mosquitto import Mosquitto
from tests.services.tansu import TansuBroker


@pytest.fixture(scope="module")
def broker(tansu_broker_module: TansuBroker) -> str:
    return tansu_broker_module.bootstrap_servers


@pytest.fixture(scope="module")
def brokers(tansu_broker_module: TansuBroker,
            mosquitto_broker_module: Mosquitto) -> tuple[str, Mosquitto]:
    """The MQTT modules' brokers: Kafka (the directory only) and mosquitto (the events)."""
    return tansu_broker_module.bootstrap_servers, mosquitto_broker_module


@pytest.fixture(scope="session")
def reference(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Alerts:
    return expected_alerts(tiny_model, tmp_path_factory.mktemp("replay"))
