"""``watchdog run`` as a real process: SIGTERM commits, a restart resumes without re-alerting.

The first run reads the first half of the events and gets SIGTERM while the last of them
still wait in the reorder buffer, its partitions not idle: it must leave them unprocessed and
uncommitted (:meth:`PartitionPlan.flush_at_stop`: records of the same minutes may not all be
read yet), deliver the alerts of what it processed, commit up to there and exit 0 within 10 s.
The second run (second half produced meanwhile) re-reads one window horizon to rebuild its
windows, suppresses what it alerted before, and in the end every alert replay finds over all
events is on the alerts topic; only alerts the first run raised on arrival of the events it
left come twice.
Its logs are JSON lines that never name an account.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.daemon.helpers import World, replay_alerts, wait_async
from tests.daemon.kafkautil import (
    committed,
    daemon_config,
    make_topics,
    produce,
    produce_state,
    read_all,
)
from tests.services.exposition import samples, total
from tests.services.procs import ManagedProcess, free_port, wait_for_http

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def scrape(url: str) -> dict[str, float]:
    return samples(httpx.get(url, timeout=5).text)


def daemon(cfg: Path) -> ManagedProcess:
    return ManagedProcess("watchdog", [sys.executable, "-m", "watchdog", "run", "--config",
                                       str(cfg)], cwd=ROOT, stop_timeout=12.0)


async def _ends(bs: str) -> dict[int, int]:
    ends = {p: 0 for p in range(4)}
    for r in await read_all(bs, "access-logs"):
        ends[r.partition] = max(ends[r.partition], r.offset + 1)
    return ends


async def _consumed(url: str, n: int) -> bool:
    s = scrape(url)
    lag = [v for k, v in s.items()
           if k.startswith("watchdog_consumer_lag{") and 'topic="access-logs"' in k]
    return total(s, "watchdog_events_total") >= n and len(lag) == 4 and not any(lag)


async def test_sigterm_commits_and_restart_does_not_realert(
        tansu_broker, world: World, tmp_path: Path) -> None:
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=4)
    await produce_state(bs, world)
    # split where half of the alerts are behind us, so that both runs have alerts to raise
    index = {orjson.loads(e)["event"]["id"]: i for i, e in enumerate(world.events)}
    completing = sorted(index[eid] for eid in world.expected.values())
    half = completing[len(completing) // 2] + 1
    first, second = world.events[:half], world.events[half:]
    expected_first = replay_alerts(first, world.directory, world.subjects, world.policy,
                                   tmp_path / "replay-first")
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    cfg = daemon_config(tmp_path / "watchdog.yaml", bs, listen=f"127.0.0.1:{port}",
                        policy=str(world.policy),
                        # no partition goes idle (and releases the buffer) before the SIGTERM
                        kafka={"idle_after_seconds": 600.0})
    await produce(bs, "access-logs", first, key="user", event_time=True)

    # -- run 1: SIGTERM with events still in the reorder buffer ---------------------------
    with daemon(cfg) as proc:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30, proc=proc)
        await wait_async(lambda: _consumed(metrics, half), within=45,
                         what="run 1 consumed the first half")
        held = scrape(metrics)['watchdog_queue_depth{queue="reorder"}']
        assert held > 0, "the test needs events held in the reorder buffer at SIGTERM"
        t0 = time.monotonic()
        assert proc.stop() == 0  # SIGTERM, then wait
        assert time.monotonic() - t0 < 10
        log1 = proc.log_text()
    at_stop = await committed(bs, "watchdog", "access-logs", 4)
    assert sum(at_stop.values()) < sum((await _ends(bs)).values()), "the buffer was left"
    assert "shutdown_without_flush" in log1
    after_first = [r.key.decode() for r in await read_all(bs, "alerts")]
    # nothing false (that it alerted on what it committed: run 2 suppresses those alerts, so
    # one missing would be lost in the end)
    assert set(after_first) <= set(expected_first)
    assert 0 < len(expected_first) < len(world.expected)

    # -- run 2: resumes, rebuilds its windows, alerts only what is new ---------------------------
    await produce(bs, "access-logs", second, key="user", event_time=True)
    ends = await _ends(bs)

    async def all_committed() -> bool:
        return await committed(bs, "watchdog", "access-logs", 4) == ends

    # idle detection on: the end of the stream is processed (every partition idle) and
    # committed before the stop
    cfg = daemon_config(tmp_path / "watchdog.yaml", bs, listen=f"127.0.0.1:{port}",
                        policy=str(world.policy))
    with daemon(cfg) as proc:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30, proc=proc)
        # the re-read of the first half (to rebuild windows) counts as consumed events too
        await wait_async(lambda: _consumed(metrics, len(world.events)), within=45,
                         what="run 2 consumed the rest")
        await wait_async(all_committed, within=45, what="run 2 committed the whole stream")
        assert proc.stop() == 0
        log2 = proc.log_text()
    on_topic = [r.key.decode() for r in await read_all(bs, "alerts")]
    # only alerts raised on arrival of the events run 1 left come again, each once
    again = {a for a in on_topic if on_topic.count(a) > 1}
    assert again <= set(after_first)
    assert len(on_topic) == len(set(on_topic)) + len(again)
    assert set(on_topic) == set(world.expected)

    # structured JSON logs, without personal data
    users = {World.user_of(e) for e in world.events}
    events = []
    for text in (log1, log2):
        lines = [ln for ln in text.splitlines() if ln.startswith("{")]
        assert lines
        for ln in lines:
            doc = orjson.loads(ln)
            assert {"event", "level", "timestamp"} <= doc.keys()
            assert not any(u in ln for u in users), ln
            events.append(doc["event"])
    assert "rebuilding_windows" in events
    stopped = [orjson.loads(ln) for ln in log2.splitlines()
               if ln.startswith("{") and '"stopped"' in ln]
    # alerts completed by re-read events were found again and suppressed (Tansu answers
    # offsets_for_times with offset 0, so the whole first half was re-read)
    assert stopped[0]["suppressed"] >= 1


async def test_sigterm_with_the_broker_gone_still_exits_in_time(tansu_broker,
                                                                tmp_path: Path) -> None:
    """The broker dies first (as when a demo's Ctrl-C reaches both): the daemon cannot
    commit, but it still exits 0 within 10 s, and its logs stay JSON without a flood of
    client retries."""
    bs = tansu_broker.bootstrap_servers
    await make_topics(bs, partitions=4)
    port = free_port()
    cfg = daemon_config(tmp_path / "watchdog.yaml", bs, listen=f"127.0.0.1:{port}")
    with daemon(cfg) as proc:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30, proc=proc)

        async def assigned() -> bool:
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(f"http://127.0.0.1:{port}/readyz")
            return r.status_code == 200 and len(r.json().get("partitions", [])) == 4

        await wait_async(assigned, within=30, what="the daemon joined its group")
        tansu_broker.stop(kill=True)
        t0 = time.monotonic()
        assert proc.stop() == 0
        assert time.monotonic() - t0 < 10
        log = proc.log_text()
    lines = [ln for ln in log.splitlines() if not ln.startswith("--- start")]
    assert all(ln.startswith("{") for ln in lines)
    assert len(lines) < 100
