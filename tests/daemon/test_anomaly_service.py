"""Two services that share the work (``detection.only``): the rules in the group ``watchdog``,
the anomaly model in its own group ``watchdog.anomaly``, against a real broker (Tansu).

Both read every event: the rules service raises the rule alerts and dead-letters the bad
record; the anomaly service raises the insider's ``anomaly`` alert, runs no rule and
dead-letters nothing; each commits its own offsets to the end.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.daemon.helpers import cancel_all, model_service, stop_all, wait_for
from tests.daemon.kafkautil import (
    committed,
    daemon_config,
    insider_topics,
    produce,
    read_all,
)
from watchdog import __version__

pytestmark = pytest.mark.integration

PARTITIONS = 2
BAD = b'{"@timestamp":"2026-11-02T00:00:00Z","event":{"action":"read"}}'  # no event.id


async def test_rules_and_anomaly_services_split_the_work(
        tansu_broker, model_dir: Path, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    docs = await insider_topics(bs, PARTITIONS)
    await produce(bs, "access-logs", [*docs[:100], BAD, *docs[100:]], key="user",
                  event_time=True)
    total = len(docs) + 1

    common = {"sinks": {"kafka": {}}, "model": str(model_dir),
              "kafka": {"idle_after_seconds": 1.0}}
    rules, rules_sink = model_service(daemon_config(
        tmp_path / "rules.yaml", bs, detection={"only": "rules"}, **common), None)
    anomaly, anomaly_sink = model_service(daemon_config(
        tmp_path / "anomaly.yaml", bs, detection={"only": "anomaly"}, **common), model_dir)
    assert anomaly.cfg.kafka.group == "watchdog.anomaly"
    assert anomaly.whole_stream is None  # log_gap is a rule: not the anomaly service's
    # (nor its gauge: the alert on a missing reader counts the rules service's instances)
    assert anomaly.metrics.registry.get_sample_value("watchdog_whole_stream_reader") is None
    assert rules.metrics.registry.get_sample_value("watchdog_whole_stream_reader") == 0
    # what each runs, for panels that count the input once (the anomaly service reads it again)
    for svc, name in ((rules, "rules"), (anomaly, "anomaly")):
        assert svc.metrics.registry.get_sample_value(
            "watchdog_build_info", {"version": __version__, "detection": name}) == 1
    runs = [asyncio.create_task(s.run()) for s in (rules, anomaly)]
    try:
        for svc in (rules, anomaly):
            p = svc.pipeline
            # and every partition idle: a stop before leaves the buffer for the next start
            await wait_for(lambda p=p: p.detector.processed + len(p.order) + p.rejected
                           == total and p.all_idle(), within=60,
                           what="every record read by both services, every partition idle")
        await wait_for(lambda: any(a.rule == "anomaly" for a in anomaly_sink.alerts),
                       within=30, what="the insider's anomaly alert")
        # each service's lag is its own group's, on the same partitions
        for svc, group in ((rules, "watchdog"), (anomaly, "watchdog.anomaly")):
            for p_ in range(PARTITIONS):
                assert svc.metrics.registry.get_sample_value("watchdog_consumer_lag", {
                    "group": group, "topic": "access-logs", "partition": str(p_)}) == 0
        await stop_all([rules, anomaly], runs, 20)
    finally:
        cancel_all([rules, anomaly], runs)

    assert {a.rule for a in anomaly_sink.alerts} == {"anomaly"}
    assert any(a.user_id == "u004" for a in anomaly_sink.alerts)
    assert rules_sink.alerts, "the insider's copies to a USB stick break rules too"
    assert all(a.rule != "anomaly" for a in rules_sink.alerts)
    # one dead letter, from the rules service; the anomaly service counted the record
    assert len(await read_all(bs, "access-logs.dlq")) == 1
    assert anomaly.pipeline.rejected == 1
    ends = await committed(bs, "watchdog", "access-logs", PARTITIONS)
    assert sum(ends.values()) == total
    assert await committed(bs, "watchdog.anomaly", "access-logs", PARTITIONS) == ends

