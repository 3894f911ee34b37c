"""The split deployment's accumulated risk against the real broker (Tansu): the rules service
publishes its alerts to the Kafka sink's topic, the anomaly service reads them back
(watchdog.daemon.rule_alert_feed) and reads each partition no further than the rules service
has committed (watchdog.daemon.rules_follow). Both services read a backlog here, the anomaly
service started first, and its risk alerts are replay's (rules and model in one process):
u010 and the insider u004 (tests/fuzz/_anomaly_stream.py). Without following (measured with
``follow_rules_seconds: 0``) the anomaly service scored windows before the rules' alerts of
their time arrived: u004 alerted at 13:00 instead of 13:09:20, u010 first at 00:00 instead of
13:41 the day before. Without the feed it missed the insider.
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
FOLLOW = 12.0  # detection.follow_rules_seconds: longer than any pause of the rules service here


def users(alerts: set[bytes]) -> set[str]:
    return {orjson.loads(a)["user_id"] for a in alerts}


def _rules(cfg_path: Path) -> Service:
    """The rules service with its configured sinks: the Kafka topic."""
    eng = Engine(load_policy(None), Pseudonymizer(stream.KEY), default_rules())
    cfg = load_config(str(cfg_path), overrides={"detection.only": "rules"})
    return Service(cfg, eng, metrics=Metrics(), listen=False)


def _anomaly(cfg_path: Path, model: Path, **overrides: object) -> tuple[Service, MemorySink]:
    eng = Engine(load_policy(None), Pseudonymizer(stream.KEY), default_rules())
    cfg = load_config(str(cfg_path), overrides={"detection.only": "anomaly", **overrides})
    sink = MemorySink()
    return Service(cfg, eng, metrics=Metrics(), stages=[load_stage(model, eng)], sinks=[sink],
                   listen=False), sink


async def world(bs: str, tmp_path: Path, model: Path, partitions: int,
                raws: list[bytes]) -> Path:
    """The topics, the directory and ``raws`` produced; the services' shared configuration
    (the rules' alerts to Kafka)."""
    await make_topics(bs, partitions=partitions)
    await produce(bs, "directory", [msgspec.json.encode(r) for r in directory_records(
        stream.ACCOUNTS)], key="directory")
    await produce(bs, "access-logs", raws, key="user", event_time=True)
    return daemon_config(tmp_path / "watchdog.yaml", bs, sinks={"kafka": {}},
                         model=str(model), kafka={"idle_after_seconds": 1.0})


async def test_the_anomaly_service_weighs_the_rules_alerts(
        tansu_broker, tiny_model: Path, tmp_path: Path) -> None:
    cfg_path = await world(tansu_broker.bootstrap_servers, tmp_path, tiny_model, PARTITIONS,
                           stream.RAWS)
    rules = _rules(cfg_path)
    # the stream ends with an event dated two days ahead, which the rules service holds (its
    # commit stays before it): waited for this long, then read (the lift counted below)
    anomaly, anomaly_sink = _anomaly(cfg_path, tiny_model,
                                     **{"detection.follow_rules_seconds": FOLLOW})
    assert anomaly.rule_alerts is not None
    assert rules.rule_alerts is None
    services = [rules, anomaly]
    replay = stream._replayed(tiny_model, tmp_path)
    want = stream.before_cut({a for a in replay if stream.kind(a) == "risk"})
    # the anomaly service first, the rules service a few seconds later (restarting, say): it
    # waits for it (alone, it would read the backlog before the rules' alerts exist)
    runs = [asyncio.create_task(anomaly.run())]

    def risk() -> set[bytes]:
        got = comparable([encode_alert(a) for a in anomaly_sink.alerts])
        return {a for a in got if stream.kind(a) == "risk"}

    try:
        await wait_for(lambda: anomaly.started.is_set(), within=30, what="the anomaly service")
        await asyncio.sleep(4.0)
        assert anomaly.pipeline.detector.processed == 0
        runs.insert(0, asyncio.create_task(rules.run()))
        # (the end marker, two days after the rest, waits ahead of the present: not processed)
        for s in services:
            p = s.pipeline
            await wait_for(lambda p=p: p.detector.processed == len(stream.RAWS) - 1
                           and not p.order, within=90, what="the events read by each service")
        await wait_for(lambda: stream.before_cut(risk()) >= want, within=60,
                       what="replay's risk alerts")
        await stop_all(services, runs, 30)
    finally:
        cancel_all(services, runs)
    assert users(want) == {"u004", "u010"}
    # a backlog: the anomaly service reads no further than the rules service committed
    # (rules_follow.py), so every rule alert is in its risk before its windows are scored
    assert stream.before_cut(risk()) == want
    taken = anomaly.metrics.registry.get_sample_value("watchdog_rule_alerts_read_total",
                                                      {"result": "taken"})
    assert taken == sum(1 for a in replay if stream.kind(a) == "rule")
    # where a reconnect goes on from: the end of what it read (the topic holds the rules' only)
    assert sum(anomaly.rule_alerts.resume.values()) == taken
    # once: at the end marker (a lift during the backlog would have made the alerts late)
    assert anomaly.metrics.registry.get_sample_value("watchdog_rules_follow_lifted_total") == 1


async def test_without_the_rules_service_the_model_reads_on(
        tansu_broker, tiny_model: Path, tmp_path: Path) -> None:
    """No rules group commits: after ``follow_rules_seconds`` the anomaly service stops
    following, says so, and reads the stream (its risk then adds what the feed brings late)."""
    cfg_path = await world(tansu_broker.bootstrap_servers, tmp_path, tiny_model, PARTITIONS,
                           stream.RAWS)
    anomaly, _sink = _anomaly(cfg_path, tiny_model,
                              **{"detection.follow_rules_seconds": 4.0})
    assert anomaly.follower is not None
    run = asyncio.create_task(anomaly.run())
    p = anomaly.pipeline
    try:
        await wait_for(lambda: bool(getattr(anomaly.sources[0], "assigned", ())), within=30,
                       what="partitions assigned")
        await asyncio.sleep(2.0)  # (the lift comes 4 s after the partitions began waiting)
        assert p.detector.processed == 0, "read before any rules offset was committed"
        await wait_for(lambda: p.detector.processed == len(stream.RAWS) - 1 and not p.order,
                       within=60, what="the events read once following was lifted")
        await stop_all([anomaly], [run], 30)
    finally:
        cancel_all([anomaly], [run])
    lifted = anomaly.metrics.registry.get_sample_value("watchdog_rules_follow_lifted_total")
    assert (lifted or 0.0) >= 1
