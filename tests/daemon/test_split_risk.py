"""The split deployment's accumulated risk against the real broker (Tansu): the rules service
publishes its alerts to the Kafka sink's topic, the anomaly service reads them back
(watchdog.daemon.rule_alert_feed), and its risk alerts name replay's accounts (rules and model
in one process): u010 and the insider u004 (tests/fuzz/_anomaly_stream.py). Without the feed
the anomaly service raised one risk alert, u010's, and missed the insider. Both services read
a backlog here, so the anomaly service scores windows before the rules' alerts of their time
arrive: those count late, decayed, and the alerts' times and points differ from replay's
(measured: u004 at 13:00 instead of 13:09, u010's first at 00:00 instead of 13:41 the day
before); when the rules' alerts come first, as in a stream the services keep up with, the
risk alerts are replay's exactly (tests/daemon/test_rule_alert_feed.py, without a broker).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import orjson
import pytest

from tests.anomaly.conftest import directory_records
from tests.daemon.helpers import cancel_all, stop_all, wait_for
from tests.daemon.kafkautil import daemon_config, make_topics, produce
from tests.fuzz import _anomaly_stream as stream
from tests.fuzz._live_broker import comparable
from watchdog.alerts.model import encode_alert
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.anomaly.stage import load_stage
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.sinks.memory import MemorySink
from watchdog.engine.engine import Engine
from watchdog.policy import load_policy
from watchdog.rules import default_rules

pytestmark = pytest.mark.integration
PARTITIONS = 1  # (one account per partition as in production; one partition: no event late)


def users(alerts: set[bytes]) -> set[str]:
    return {orjson.loads(a)["user_id"] for a in alerts}


def _rules(cfg_path: Path) -> Service:
    """The rules service with its configured sinks: the Kafka topic."""
    eng = Engine(load_policy(None), Pseudonymizer(stream.KEY), default_rules())
    cfg = load_config(str(cfg_path), overrides={"detection.only": "rules"})
    return Service(cfg, eng, metrics=Metrics(), listen=False)


def _anomaly(cfg_path: Path, model: Path) -> tuple[Service, MemorySink]:
    eng = Engine(load_policy(None), Pseudonymizer(stream.KEY), default_rules())
    cfg = load_config(str(cfg_path), overrides={"detection.only": "anomaly"})
    sink = MemorySink()
    return Service(cfg, eng, metrics=Metrics(), stages=[load_stage(model, eng)], sinks=[sink],
                   listen=False), sink


async def test_the_anomaly_service_weighs_the_rules_alerts(
        tansu_broker, tiny_model: Path, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=PARTITIONS)
    await produce(bs, "directory", [msgspec.json.encode(r) for r in directory_records(
        stream.ACCOUNTS)], key="directory")
    await produce(bs, "access-logs", stream.RAWS, key="user", event_time=True)
    cfg_path = daemon_config(tmp_path / "watchdog.yaml", bs, sinks={"kafka": {}},
                             model=str(tiny_model), kafka={"idle_after_seconds": 1.0})
    rules = _rules(cfg_path)
    anomaly, anomaly_sink = _anomaly(cfg_path, tiny_model)
    assert anomaly.rule_alerts is not None
    assert rules.rule_alerts is None
    services = [rules, anomaly]
    runs = [asyncio.create_task(s.run()) for s in services]
    replay = stream._replayed(tiny_model, tmp_path)
    want = stream.before_cut({a for a in replay if stream.kind(a) == "risk"})

    def risk() -> set[bytes]:
        got = comparable([encode_alert(a) for a in anomaly_sink.alerts])
        return {a for a in got if stream.kind(a) == "risk"}

    try:
        # (the end marker, two days after the rest, waits ahead of the present: not processed)
        for s in services:
            p = s.pipeline
            await wait_for(lambda p=p: p.detector.processed == len(stream.RAWS) - 1
                           and not p.order, within=90, what="the events read by each service")
        await wait_for(lambda: users(risk()) >= users(want), within=60,
                       what="risk alerts of replay's accounts")
        await stop_all(services, runs, 30)
    finally:
        cancel_all(services, runs)
    assert users(want) == {"u004", "u010"}
    # a backlog: the anomaly service scores windows before the rules' alerts of their time
    # come, which then count late, decayed (exact when they come first: test_rule_alert_feed)
    assert users(stream.before_cut(risk())) == users(want)
    taken = anomaly.metrics.registry.get_sample_value("watchdog_rule_alerts_read_total",
                                                      {"result": "taken"})
    assert taken == sum(1 for a in replay if stream.kind(a) == "rule")
    # where a reconnect goes on from: the end of what it read (the topic holds the rules' only)
    assert sum(anomaly.rule_alerts.resume.values()) == taken
