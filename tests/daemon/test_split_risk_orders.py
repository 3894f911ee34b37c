"""The split deployment's risk equals replay's whatever the order (watchdog.daemon.rules_follow),
against the real broker (Tansu) and both services: drawn per seed, the partitions (2-3), how
long the anomaly service runs before the rules service starts (0-3 s), whether the events are
a backlog or come in two halves with a pause, and when the rules service is stopped and a new
one started (after 10-90% of the events). The anomaly service's risk alerts before the stream's
end marker must be replay's (rules and model in one process) byte for byte; its `lift` at the
end marker (held by the rules service, tests/daemon/test_split_risk.py) is its only one."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.daemon.helpers import cancel_all, stop_all, wait_for
from tests.daemon.kafkautil import produce
from tests.daemon.test_split_risk import FOLLOW, _anomaly, _rules, world
from tests.fuzz import _anomaly_stream as stream
from tests.fuzz._live_broker import comparable
from watchdog.alerts.model import encode_alert

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_the_split_risk_is_replay_s_whatever_the_order(
        tansu_broker, tiny_model: Path, tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    partitions = rnd.choice([2, 3])
    head_start = rnd.uniform(0.0, 3.0)
    halves = rnd.random() < 0.5
    restart_after = int(len(stream.RAWS) * rnd.uniform(0.1, 0.9))
    bs = tansu_broker.bootstrap_servers
    first = stream.RAWS[:len(stream.RAWS) // 2] if halves else stream.RAWS
    cfg_path = await world(bs, tmp_path, tiny_model, partitions, first)
    anomaly, sink = _anomaly(cfg_path, tiny_model, **{"detection.follow_rules_seconds": FOLLOW})
    want = stream.before_cut({a for a in stream._replayed(tiny_model, tmp_path)
                              if stream.kind(a) == "risk"})

    def risk() -> set[bytes]:
        return {a for a in comparable([encode_alert(a) for a in sink.alerts])
                if stream.kind(a) == "risk"}

    services, runs = [anomaly], [asyncio.create_task(anomaly.run())]
    try:
        await asyncio.sleep(head_start)
        rules = _rules(cfg_path)
        services.append(rules)
        runs.append(asyncio.create_task(rules.run()))
        if halves:
            await asyncio.sleep(2.0)
            await produce(bs, "access-logs", stream.RAWS[len(first):], key="user",
                          event_time=True)
        await wait_for(lambda: rules.pipeline.detector.processed >= restart_after, within=90,
                       what="the rules service part-way")
        await stop_all([rules], [runs[-1]], 30)
        rules = _rules(cfg_path)  # the same configuration: its group, its committed offsets
        services[-1] = rules
        runs[-1] = asyncio.create_task(rules.run())
        p = anomaly.pipeline
        await wait_for(lambda: p.detector.processed == len(stream.RAWS) - 1 and not p.order,
                       within=120, what="the events read by the anomaly service")
        await wait_for(lambda: stream.before_cut(risk()) >= want, within=30,
                       what="replay's risk alerts")
        await stop_all(services, runs, 30)
    finally:
        cancel_all(services, runs)
    assert stream.before_cut(risk()) == want, (partitions, head_start, halves, restart_after)
    assert anomaly.metrics.registry.get_sample_value("watchdog_rules_follow_lifted_total") == 1
