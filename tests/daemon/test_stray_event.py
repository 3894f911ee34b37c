"""One event dated far ahead, a 10 MB document, then an idle pause: replay's alerts still.

Against the real broker (Tansu): an organisation's days produced in two halves; between them
one login dated 2099 (a host with a wrong clock), or one day ahead, and a pause long enough
for every partition to go idle (the buffer is flushed). Before the fix the flush released the
stray event, everything after the pause was late, processed in arrival order, and ``log_gap``
flooded (hundreds of false alerts). The stray must be held, counted, and processed where
replay processes it; every offset ends up committed. The 10 MB document (``too_large``) used
to jam the dead-letter producer (aiokafka's 1 MiB limit, retried forever, every commit behind
it): it must reach the dead letters as a reference to where it is.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.daemon.helpers import KEY, cancel_all, replay_alerts, stop_all, wait_async, wait_for
from tests.daemon.kafkautil import (
    committed,
    daemon_config,
    make_topics,
    produce,
    produce_state,
    read_all,
)
from tests.services.exposition import metric_value
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.daemon.app import Service
from watchdog.daemon.config import load_config
from watchdog.engine.engine import Engine
from watchdog.policy import load_policy
from watchdog.rules import default_rules
from watchdog.simulate import SimConfig, build_world, write_world

pytestmark = pytest.mark.integration

PARTITIONS = 4


def _time(raw: bytes) -> datetime:
    return datetime.fromisoformat(orjson.loads(raw)["@timestamp"].replace("Z", "+00:00"))


def _stray(events: list[bytes], when: datetime | None, after: datetime) -> bytes:
    """A copy of a login of the first half, under a new id, dated ``when`` (or one day after
    ``after``)."""
    doc = next(orjson.loads(e) for e in events if orjson.loads(e)["event"]["action"] == "login")
    doc["event"]["id"] = "stray-login"
    doc["event"].pop("sequence", None)
    stamp = when or after + timedelta(days=1)
    doc["@timestamp"] = stamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps(doc)


@pytest.mark.parametrize("when", [datetime(2099, 6, 1, tzinfo=UTC), None],
                         ids=["year-2099", "one-day-ahead"])
async def test_a_stray_event_and_a_pause_change_no_alert(
        tansu_broker, tmp_path: Path, when: datetime | None) -> None:
    w = build_world(SimConfig(accounts=100, days=4, violations_per_rule=1, benign_per_kind=1,
                              events_per_account_per_day=5))
    paths = write_world(w, tmp_path / "world")

    def lines(p: Path) -> list[bytes]:
        return [ln for ln in p.read_bytes().splitlines() if ln]

    events, directory, subjects = (lines(paths[k]) for k in ("events", "directory", "subjects"))
    events.sort(key=_time)
    half = len(events) // 2
    first, second = events[:half], events[half:]
    stray = _stray(first, when, _time(first[-1]))
    expected = replay_alerts([*first, stray, *second], directory, subjects, paths["policy"],
                             tmp_path / "replay")
    assert any(a.startswith("log_gap:") for a in expected)

    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=PARTITIONS)

    class _W:
        pass

    state = _W()
    state.directory, state.subjects = directory, subjects  # type: ignore[attr-defined]
    await produce_state(bs, state)
    big = b'{"@timestamp":"2026-11-01T00:00:00Z","padding":"' + b"x" * (10 << 20) + b'"}'
    await produce(bs, "access-logs", first, key="user", event_time=True)
    await produce(bs, "access-logs", [big], max_request_size=12 << 20)
    await produce(bs, "access-logs", [stray], key="user", event_time=True)
    cfg = load_config(str(daemon_config(
        # idle after 4 s, not 1: the pause between the halves is waited for below, while a
        # producer starved of CPU on a loaded machine must not look like a second pause
        # (an idle flush mid-half makes the rest of it late, as it would in production)
        tmp_path / "watchdog.yaml", bs, kafka={"idle_after_seconds": 4.0},
        sinks={"kafka": {}})))
    engine = Engine(load_policy(str(paths["policy"])), Pseudonymizer(KEY.encode()), default_rules())
    svc = Service(cfg, engine, listen=False)
    run = asyncio.create_task(svc.run())
    try:
        await wait_for(lambda: svc.started.is_set() and bool(svc.sources[0].assigned),
                       within=30, what="daemon consuming")
        p = svc.pipeline
        await wait_for(lambda: p.all_idle() and p.detector.processed == len(first),
                       within=60, what="the first half processed and every partition idle")
        assert p.order.held() == 1  # the stray waits apart: the flush did not release it
        await produce(bs, "access-logs", second, key="user", event_time=True)
        total = len(first) + 1 + len(second)
        await wait_for(lambda: p.detector.processed + len(p.order) + p.order.held() == total,
                       within=60, what="every event consumed")
        await wait_for(lambda: p.all_idle(), within=30, what="idle again")
        assert p.order.stats.late == 0
        assert metric_value(svc.metrics.future) >= 1  # (and any held briefly at a resumption)
        # the stray's stream went on without it: its record no longer holds the commit back
        # (every offset committed while it is still held, before any shutdown)
        ends = {p: 0 for p in range(PARTITIONS)}
        for r in await read_all(bs, "access-logs"):
            ends[r.partition] = max(ends[r.partition], r.offset + 1)

        async def all_committed() -> bool:
            return await committed(bs, cfg.kafka.group, "access-logs", PARTITIONS) == ends

        await wait_async(all_committed, within=30, what="every offset committed, stray held")
        assert metric_value(svc.metrics.future_strays) == 1  # judged a stray on the way
        assert p.order.held() == (1 if when else 0)  # the present passed one day ahead
        await stop_all([svc], [run], 20)  # flushes everything, the stray too, and delivers
    finally:
        cancel_all([svc], [run])

    got = [r.key.decode() for r in await read_all(bs, "alerts")]
    assert len(got) == len(set(got))
    missing, extra = set(expected) - set(got), set(got) - set(expected)
    assert not missing, sorted(missing)[:5]
    assert not extra, sorted(extra)[:5]
    assert await committed(bs, cfg.kafka.group, "access-logs", PARTITIONS) == ends
    (letter,) = await read_all(bs, "access-logs.dlq")
    headers = dict(letter.headers)
    assert headers["reason"] == b"too_large"
    assert headers["reference"] == b"true"
    ref = orjson.loads(letter.value)["dead_letter_reference"]
    assert ref["size"] == len(big)
    assert ref["sha256"] == hashlib.sha256(big).hexdigest()
    assert ref["source_topic"] == "access-logs"
    original = await read_all(bs, "access-logs")
    assert [r.value for r in original if (r.partition, r.offset) == (
        ref["source_partition"], ref["source_offset"])] == [big]  # findable where it says
