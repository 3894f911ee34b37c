"""The split deployment's risk equals replay's whatever the order (watchdog.daemon.rules_follow),
against the real broker (Tansu) and both services: drawn per seed, the partitions (2-3), how
long the anomaly service runs before the rules service starts (0-3 s), whether the events are
a backlog or come in two halves with a pause, and which of the services (the rules service, the
anomaly service with its saved model state, or both) is stopped and a new one started, after
10-90% of its events. The anomaly service's risk alerts before the stream's
end marker must be replay's (rules and model in one process) byte for byte; its `lift` at the
end marker (held by the rules service, tests/daemon/test_split_risk.py) is its only one, if
any."""

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
from watchdog.daemon.app import Service
from watchdog.daemon.sinks.memory import MemorySink
from watchdog.daemon.sources.kafka import KafkaSource

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seed", [11, 14, 21, 23])
async def test_the_split_risk_is_replay_s_whatever_the_order(
        tansu_broker, tiny_model: Path, tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    partitions = rnd.choice([2, 3])
    head_start = rnd.uniform(0.0, 3.0)
    halves = rnd.random() < 0.5
    # which service is stopped (as by SIGTERM) and replaced, after how many of its events
    restarts = {kind: int(len(stream.RAWS) * rnd.uniform(0.1, 0.9))
                for kind in rnd.choice([("rules",), ("anomaly",), ("rules", "anomaly")])}
    drawn = (partitions, round(head_start, 2), halves, restarts)
    bs = tansu_broker.bootstrap_servers
    first = stream.RAWS[:len(stream.RAWS) // 2] if halves else stream.RAWS
    cfg_path = await world(bs, tmp_path, tiny_model, partitions, first)
    want = stream.before_cut({a for a in stream._replayed(tiny_model, tmp_path)
                              if stream.kind(a) == "risk"})
    sinks: list[MemorySink] = []

    def anomaly_service() -> Service:
        svc, sink = _anomaly(cfg_path, tiny_model, **{"detection.follow_rules_seconds": FOLLOW})
        sinks.append(sink)
        return svc

    def risk() -> set[bytes]:  # (a replaced service's alerts count too: sent is sent)
        return {a for a in comparable([encode_alert(a) for s in sinks for a in s.alerts])
                if stream.kind(a) == "risk"}

    def lifts() -> float:
        return sum(s.metrics.registry.get_sample_value("watchdog_rules_follow_lifted_total")
                   or 0.0 for s in gone + services if not s.cfg.detection.rules)

    def at_end(svc: Service) -> bool:
        """Every event read and processed: the end marker, which the rules service holds
        ahead of the present, read once following was lifted, or once a rules service stopped
        at the end committed it (its shutdown processes what it holds)."""
        src = svc.sources[0]
        assert isinstance(src, KafkaSource)
        ends = all(p["pos"] == p["highwater"] for p in src.positions().values())
        return not svc.pipeline.order and (ends or lifts() >= 1)

    services = [anomaly_service()]
    runs = [asyncio.create_task(services[0].run())]
    gone: list[Service] = []
    try:
        await asyncio.sleep(head_start)
        services.append(_rules(cfg_path))
        runs.append(asyncio.create_task(services[1].run()))
        if halves:
            await asyncio.sleep(2.0)
            await produce(bs, "access-logs", stream.RAWS[len(first):], key="user",
                          event_time=True)
        for i, kind in ((0, "anomaly"), (1, "rules")):
            if kind not in restarts:
                continue
            svc = services[i]
            await wait_for(lambda svc=svc, n=restarts[kind]: svc.pipeline.detector.processed
                           >= n, within=90, what=f"the {kind} service part-way")
            await stop_all([svc], [runs[i]], 30)
            gone.append(svc)
            # the same configuration: its group, committed offsets and saved model state
            services[i] = anomaly_service() if kind == "anomaly" else _rules(cfg_path)
            runs[i] = asyncio.create_task(services[i].run())
        await wait_for(lambda: at_end(services[0]), within=120,
                       what="the anomaly service at the stream's end")
        await wait_for(lambda: stream.before_cut(risk()) >= want, within=30,
                       what="replay's risk alerts")
        await stop_all(services, runs, 30)
    finally:
        cancel_all(services, runs)
    assert stream.before_cut(risk()) == want, drawn
    assert lifts() <= 1, drawn  # the end marker's; none while the rules service moved
