"""Two daemon instances in one consumer group split the partitions and together give the
alerts replay gives, including a bulk export spread over one hour by one account (25 exports
of 90 subjects each: none over the per-event limit, 2,250 in the hour).

``log_gap`` judges a whole dataset, whose events are spread over every partition: an instance
that sees only some partitions would take the others' events for gaps, so it holds those
alerts back (counted as suppressed), and the owner of partition 0 sends them from its
whole-stream reader (tests/daemon/test_whole_stream.py has the details). So the comparison
with replay covers every rule, log_gap included.
"""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from tests.daemon.helpers import (
    World,
    cancel_all,
    join_in_turn,
    replay_alerts,
    service,
    stop_all,
    wait_for,
)
from tests.daemon.kafkautil import daemon_config, make_topics, produce, produce_state, read_all
from watchdog.daemon.config import load_config

pytestmark = pytest.mark.integration


def _hour_of_exports(world: World) -> tuple[str, list[bytes]]:
    policy = yaml.safe_load(world.policy.read_text())
    role, spec = next((r, s) for r, s in policy["roles"].items()
                      if not s.get("bulk_export") and s.get("categories"))
    user = next(d["user_id"] for d in map(orjson.loads, world.directory)
                if d["status"] == "active" and d.get("roles") == [role])
    ip = str(next(ipaddress.ip_network(policy["internal_networks"][0]).hosts()))
    start = datetime.fromisoformat("2026-11-02T10:00:00+09:00")  # a Monday morning
    events = []
    for i in range(25):
        events.append(orjson.dumps({
            "@timestamp": (start + timedelta(seconds=140 * i)).isoformat(),
            "event": {"id": f"bulk-{i}", "action": "export", "dataset": "crm.reports"},
            "user": {"id": user}, "source": {"ip": ip},
            "data": {"resource": "crm.customers", "categories": [spec["categories"][0]],
                     "subject_count": 90, "purpose": spec["purposes"][0]},
        }))
    return user, events


async def test_two_instances_split_partitions_and_catch_an_hour_long_bulk_export(
        tansu_broker, world: World, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=4)
    await produce_state(bs, world)
    user, exports = _hour_of_exports(world)
    events = sorted([*world.events, *exports],
                    key=lambda e: datetime.fromisoformat(orjson.loads(e)["@timestamp"]))
    expected = replay_alerts(events, world.directory, world.subjects, world.policy,
                             tmp_path / "replay")
    assert any(a.startswith("log_gap:") for a in expected)
    hourly = {a for a, e in expected.items() if a.startswith("bulk_export:") and
              e.startswith("bulk-")}
    assert len(hourly) == 1, "replay finds the hour-long export once"

    cfg = load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs)))
    services = [service(cfg, world) for _ in range(2)]
    runs: list[asyncio.Task[int]] = []
    try:
        await join_in_turn(services, runs, 4)
        split = [sorted(s.sources[0].assigned) for s in services]
        assert not set(split[0]) & set(split[1])
        await produce(bs, "access-logs", events, key="user", event_time=True)
        await wait_for(lambda: sum(s.pipeline.detector.processed + len(s.pipeline.order)
                                   for s in services) == len(events), within=60,
                       what="every event consumed by one of the instances")
        # and by the owner of partition 0 again, for log_gap (a buffer is flushed at shutdown
        # only when every partition is idle: else it is read again by the next reader, not by
        # this test)
        reader = next(s for s in services if 0 in s.sources[0].assigned).whole_stream

        def read_all_again() -> bool:
            r = reader.reader
            return r is not None and (r.pipeline.detector.processed + len(r.pipeline.order)
                                      >= len(events)) and r.pipeline.all_idle()

        await wait_for(read_all_again, within=60, what="the whole-stream reader caught up")
        await wait_for(lambda: all(s.pipeline.all_idle() for s in services), within=30,
                       what="every instance's partitions idle")
        await stop_all(services, runs, 20)
    finally:
        cancel_all(services, runs)

    alerts = {r.key.decode(): orjson.loads(r.value) for r in await read_all(bs, "alerts")}
    assert set(alerts) == set(expected)
    owner = next(s for s in services if 0 in s.sources[0].assigned)
    assert [s.whole_stream.starts for s in services] == [int(s is owner) for s in services]
    assert hourly <= alerts.keys()
    (bulk,) = (alerts[a] for a in hourly)
    assert bulk["user_id"] == user
    assert len(bulk["event_ids"]) > 1  # the alert cites the exports of the hour
    assert sum(s.pipeline.suppressed for s in services) > 0
