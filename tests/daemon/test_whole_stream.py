"""The whole-stream reader: ``log_gap`` with several instances in one group.

A dataset's events are spread over every partition (the topic is keyed by user.id), so an
instance that owns only some partitions cannot judge a dataset's silences and sequence gaps: it
holds those alerts back, and the owner of partition 0 reads the whole topic again in the group
``watchdog.whole-stream`` and sends them. The stream here has three login datasets fed by many
accounts (so by every partition), one of them silent for longer than
``thresholds.source_silence_minutes`` while the others keep sending, and sequence gaps in the
others; what replay finds over it is what the daemons must deliver, log_gap included.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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
    wait_async,
    wait_for,
)
from tests.daemon.kafkautil import daemon_config, make_topics, produce, produce_state, read_all
from tests.services.exposition import metric_value
from watchdog.daemon.config import load_config

pytestmark = pytest.mark.integration

PARTITIONS = 4
START = datetime.fromisoformat("2026-11-02T10:00:00+09:00")  # a Monday morning
DATASETS = {"door.auth": 5_000, "vpn.auth": 70_000, "sso.auth": 900_000}  # first sequence
INVALID = [b"{not json", b'{"event": {"id": "no-timestamp"}}']


def _logins(world: World, minutes: range, *, silent: tuple[str, range] | None = None,
            gaps: dict[tuple[str, int], int] | None = None) -> list[bytes]:
    """One successful login per dataset and minute, each by the next of 48 active accounts
    (their keys spread the datasets over every partition). ``silent``: a dataset sends nothing
    during those minutes; ``gaps``: (dataset, minute) -> sequence numbers skipped there."""
    policy = yaml.safe_load(world.policy.read_text())
    ip = str(next(ipaddress.ip_network(policy["internal_networks"][0]).hosts()))
    users = [d["user_id"] for d in map(orjson.loads, world.directory)
             if d["status"] == "active"][:48]
    assert len(users) == 48
    seq = dict(DATASETS)
    for m in range(minutes.start):  # sequences continue across the parts of a stream
        for ds in DATASETS:
            if not (silent and ds == silent[0] and m in silent[1]):
                seq[ds] += 1 + (gaps or {}).get((ds, m), 0)
    out = []
    for m in minutes:
        for i, ds in enumerate(DATASETS):
            if silent and ds == silent[0] and m in silent[1]:
                continue
            seq[ds] += (gaps or {}).get((ds, m), 0)
            out.append(orjson.dumps({
                "@timestamp": (START + timedelta(minutes=m, seconds=7 * i)).isoformat(),
                "event": {"id": f"{ds}-{seq[ds]}", "action": "login", "outcome": "success",
                          "dataset": ds, "sequence": seq[ds]},
                "user": {"id": users[(3 * m + i) % len(users)]}, "source": {"ip": ip},
            }))
            seq[ds] += 1
    return out


def _silence(world: World) -> int:
    return int(yaml.safe_load(world.policy.read_text())["thresholds"]["source_silence_minutes"])


def _total(counter: Any, **labels: str) -> float:
    return sum(s.value for metric in counter.collect() for s in metric.samples
               if s.name.endswith("_total") and labels.items() <= s.labels.items())


async def _alert_keys(bs: str) -> list[str]:
    return [r.key.decode() for r in await read_all(bs, "alerts")]


async def _until_alerts(bs: str, ids: set[str], what: str) -> None:
    async def arrived() -> bool:
        return ids <= set(await _alert_keys(bs))

    await wait_async(arrived, within=60, what=what)


async def test_two_instances_deliver_replays_log_gap_alerts_once(
        tansu_broker, world: World, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=PARTITIONS)
    await produce_state(bs, world)
    silence = _silence(world)
    events = _logins(world, range(180), silent=("door.auth", range(40, 40 + silence + 15)),
                     gaps={("vpn.auth", 90): 4, ("sso.auth", 120): 2})
    expected = replay_alerts(events, world.directory, world.subjects, world.policy,
                             tmp_path / "replay")
    gaps = {a for a in expected if a.startswith("log_gap:")}
    assert len(gaps) == 3, "replay finds the silence and both sequence gaps"

    cfg = load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs)))
    services = [service(cfg, world) for _ in range(2)]
    runs: list[asyncio.Task[int]] = []
    try:
        await join_in_turn(services, runs, PARTITIONS)
        owner, other = sorted(services, key=lambda s: 0 not in s.sources[0].assigned)
        await wait_for(lambda: owner.whole_stream.reader is not None
                       and len(owner.whole_stream.reader.assigned) == PARTITIONS,
                       within=40, what="the owner of partition 0 reads every partition")
        assert metric_value(owner.metrics.whole_stream_reader) == 1
        rebalances = [s.sources[0].rebalances for s in services]
        side_rebalances = owner.whole_stream.reader.rebalances

        await produce(bs, "access-logs", [*events, *INVALID], key="user", event_time=True)
        await wait_for(lambda: sum(s.pipeline.detector.processed + len(s.pipeline.order)
                                   for s in services) == len(events), within=60,
                       what="every event consumed by one of the instances")
        await _until_alerts(bs, gaps, "the log_gap alerts")
        steady = ([s.sources[0].rebalances for s in services] == rebalances
                  and owner.whole_stream.reader.rebalances == side_rebalances)
        await stop_all(services, runs, 30)
    finally:
        cancel_all(services, runs)

    keys = await _alert_keys(bs)
    assert set(keys) == set(expected)
    if steady:  # no rebalance while the stream was read: nothing was read twice
        assert [k for k, n in Counter(keys).items() if n > 1] == []
    # the datasets were spread over the partitions of both instances, whose own pipelines
    # could not judge them: they held log_gap back, the owner's whole-stream reader sent it
    placed: dict[str, set[int]] = {}
    for r in await read_all(bs, "access-logs"):
        if r.value not in INVALID:
            placed.setdefault(orjson.loads(r.value)["event"]["dataset"], set()).add(r.partition)
    for ds in DATASETS:
        assert placed[ds] & owner.sources[0].assigned
        assert placed[ds] & other.sources[0].assigned
    assert owner.whole_stream.starts == 1
    assert other.whole_stream.starts == 0
    assert metric_value(owner.metrics.whole_stream_reader) == 0  # stopped at shutdown
    assert sum(s.pipeline.suppressed for s in services) >= len(gaps)
    # the reader's alerts count where it runs
    assert _total(owner.metrics.alerts, rule="log_gap") >= len(gaps)
    assert _total(other.metrics.alerts, rule="log_gap") == 0
    # counted once, by the main pipelines: the reader reads every record again
    assert sum(_total(s.metrics.events) for s in services) == len(events)
    assert sum(_total(s.metrics.invalid) for s in services) == len(INVALID)
    # dead-lettered by the main pipelines only: one record per invalid document (the broker
    # was once seen to return one of two concurrent producers' records only, hence <=)
    dlq = [dict(r.headers) for r in await read_all(bs, "access-logs.dlq")]
    sources = [(h["source_partition"], h["source_offset"]) for h in dlq]
    assert 0 < len(sources) <= len(INVALID)
    assert len(set(sources)) == len(sources)


async def test_a_single_instance_sees_everything_and_runs_no_reader(
        tansu_broker, world: World, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=PARTITIONS)
    await produce_state(bs, world)
    silence = _silence(world)
    events = _logins(world, range(120), silent=("sso.auth", range(20, 20 + silence + 10)),
                     gaps={("door.auth", 80): 3})
    expected = replay_alerts(events, world.directory, world.subjects, world.policy,
                             tmp_path / "replay")
    assert len([a for a in expected if a.startswith("log_gap:")]) == 2

    svc = service(load_config(str(daemon_config(tmp_path / "watchdog.yaml", bs))), world)
    run = asyncio.create_task(svc.run())
    try:
        await wait_for(lambda: len(svc.sources[0].assigned) == PARTITIONS, within=30,
                       what="the instance owns every partition")
        await produce(bs, "access-logs", events, key="user", event_time=True)
        await wait_for(lambda: svc.pipeline.detector.processed == len(events), within=60,
                       what="every event processed")
        await _until_alerts(bs, set(expected), "replay's alerts")
        assert not svc.pipeline.partial_view
        assert svc.whole_stream.starts == 0
        assert svc.whole_stream.reader is None
        assert metric_value(svc.metrics.whole_stream_reader) == 0
        await stop_all([svc], [run], 30)
    finally:
        cancel_all([svc], [run])
    keys = await _alert_keys(bs)
    assert set(keys) == set(expected)
    assert svc.pipeline.suppressed == 0  # nothing held back: the main pipeline sent log_gap


@pytest.mark.parametrize("partition_0", ["stays", "moves"])
async def test_log_gap_survives_scaling_out_and_back_in(
        tansu_broker, world: World, tmp_path: Path, partition_0: str) -> None:
    """One instance, then two, then one again: a log_gap alert in each phase, none lost.

    The first instance, alone, records each commit of its whole view in the reader group too;
    the reader starts from there, whether it runs on that instance (partition 0 stays) or on
    the newcomer (partition 0 moves), even though both main pipelines have committed further
    with partial views meanwhile. (The assignor gives partition 0 to the member whose id sorts
    first, and a member id starts with the client id.) Back to one instance, the main pipeline
    sends log_gap again."""
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=PARTITIONS)
    await produce_state(bs, world)
    silence = _silence(world)
    shape: dict[str, Any] = {"silent": ("door.auth", range(70, 70 + silence + 15)),
                             "gaps": {("vpn.auth", 30): 5, ("sso.auth", 150): 2}}
    parts = [_logins(world, range(a, b), **shape) for a, b in ((0, 60), (60, 120), (120, 180))]
    events = [e for part in parts for e in part]
    expected = replay_alerts(events, world.directory, world.subjects, world.policy,
                             tmp_path / "replay")
    ids = [{orjson.loads(e)["event"]["id"] for e in part} for part in parts]
    phases = [{a for a, e in expected.items() if a.startswith("log_gap:") and e in part}
              for part in ids]
    assert [len(p) for p in phases] == [1, 1, 1], "one log_gap alert per phase"

    first, second = ("a-first", "z-second") if partition_0 == "stays" else ("z-first", "a-second")
    a, b = (service(load_config(str(daemon_config(tmp_path / f"{n}.yaml", bs,
                                                   kafka={"client_id": n}))), world)
            for n in (first, second))
    runs = {a: asyncio.create_task(a.run())}
    both = [a, b]
    try:
        await wait_for(lambda: len(a.sources[0].assigned) == PARTITIONS, within=30,
                       what="the first instance owns every partition")
        await produce(bs, "access-logs", parts[0], key="user", event_time=True)
        await _until_alerts(bs, phases[0], "phase 1: the main pipeline's log_gap alert")
        await wait_for(lambda: a.pipeline.detector.processed == len(parts[0]), within=30,
                       what="phase 1 processed")

        runs[b] = asyncio.create_task(b.run())
        await wait_for(lambda: all(s.sources[0].assigned for s in both)
                       and sum(len(s.sources[0].assigned) for s in both) == PARTITIONS,
                       within=40, what="scaled out")
        owner = next(s for s in both if 0 in s.sources[0].assigned)
        assert owner is (a if partition_0 == "stays" else b)
        await wait_for(lambda: owner.whole_stream.reader is not None
                       and len(owner.whole_stream.reader.assigned) == PARTITIONS,
                       within=40, what="the whole-stream reader has every partition")
        await produce(bs, "access-logs", parts[1], key="user", event_time=True)
        await _until_alerts(bs, phases[1], "phase 2: the reader's log_gap alert")

        await stop_all([b], [runs.pop(b)], 30)
        await wait_for(lambda: len(a.sources[0].assigned) == PARTITIONS
                       and a.whole_stream.reader is None, within=40,
                       what="scaled in: the remaining instance has the whole view")
        await produce(bs, "access-logs", parts[2], key="user", event_time=True)
        await _until_alerts(bs, phases[2], "phase 3: the main pipeline's log_gap alert again")
        await stop_all([a], [runs.pop(a)], 30)
    finally:
        cancel_all(both, list(runs.values()))
    keys = await _alert_keys(bs)
    assert set(keys) == set(expected)  # at least once: a handover may send an alert again
    assert owner.whole_stream.starts >= 1
