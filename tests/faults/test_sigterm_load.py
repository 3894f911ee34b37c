"""SIGTERM while the daemon is under load: it commits, exits 0 within 10 s, and the restart
re-alerts nothing.

The daemon's only sink is a webhook at a local receiver that takes 20 ms per alert. The stream
is produced at 2,000 events/s; SIGTERM comes when the daemon has consumed about 68 % of it,
while the producer keeps going (alerts and events are in flight). Asserted:

- run 1 exits with code 0 less than 10 s after SIGTERM, with no alert left undelivered
  (its ``stopped`` log line says ``pending_alerts: 0``);
- its committed offsets are consistent with what it delivered: the alerts the webhook got
  from run 1 are exactly the alerts ``watchdog replay`` gives for the events below the
  committed offsets (nothing committed whose alert was not delivered, nothing delivered
  beyond what was committed), and part of the stream, not all of it, was committed;
- run 2 (same group) re-reads run 1's events to rebuild its windows but delivers none of
  run 1's alerts again: across both runs every alert_id reaches the webhook exactly once,
  and together they are exactly replay's alerts over the whole stream. (At-least-once would
  allow a duplicate after a crash; after a clean SIGTERM there is none to allow.)
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.faults.harness import (
    Daemon,
    FaultWorld,
    Offsets,
    Receiver,
    Stream,
    event_id,
    lost_and_extra,
    prepare_broker,
    until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_sigterm_under_load_commits_exits_0_and_restart_realerts_nothing(
        tansu_broker, fault_world: FaultWorld, tmp_path: Path) -> None:
    w, bs = fault_world, tansu_broker.bootstrap_servers
    n = len(w.events)
    await prepare_broker(bs, w)
    receiver = Receiver(delay=0.02)
    await receiver.up("ok")
    daemon = Daemon(tmp_path, bs, w, sinks={"webhook": {"url": receiver.url}})
    stream = Stream(bs, w.events, rate=2000)
    offsets = Offsets(bs)
    try:
        daemon.start()
        await daemon.wait_consuming()
        stream.start()

        async def loaded() -> bool:
            return await daemon.events_total() >= 0.68 * n

        await until(loaded, within=30, what="the daemon to consume 68% of the stream")
        t0 = time.monotonic()
        code = await asyncio.to_thread(daemon.proc.stop)  # SIGTERM; the stream goes on
        took = time.monotonic() - t0
        assert code == 0
        assert took < 10, f"exit took {took:.1f}s"
        run1 = list(receiver.ids)
        stopped = daemon.log_events("stopped")[-1]
        assert stopped["pending_alerts"] == 0
        committed = await offsets.committed()
        assert stream.sent < n or not stream.task.done(), "SIGTERM must come mid-stream"

        # what run 1 committed is exactly what it alerted on
        await stream.done()
        ends = stream.ends()
        assert 0 < sum(committed.values()) < n
        below = [e for e in w.events
                 if (lambda p, off: off < committed[p])(*stream.where[event_id(e)])]
        assert set(run1) == set(w.replay(below, "replay-run1"))
        assert len(run1) == len(set(run1))

        # run 2: no alert of run 1 again, the rest once
        daemon.start()
        await daemon.wait_consuming()
        await until(lambda: offsets.reached(ends), within=45,
                    what="run 2 to commit the whole stream")
        assert daemon.proc.stop() == 0
        run2 = receiver.ids[len(run1):]
        assert not set(run1) & set(run2), "run 2 re-alerted what run 1 delivered"
        lost, extra = lost_and_extra(receiver.ids, w.expected)
        assert not lost and not extra
        assert max(Counter(receiver.ids).values()) == 1
        rebuilt = daemon.log_events("rebuilding_windows")
        assert rebuilt, "run 2 re-read run 1's events to rebuild its windows"
        print(f"\nSIGTERM after {sum(committed.values())}/{n} events: exit 0 in {took:.1f}s; "
              f"run 1 delivered {len(run1)} alerts, run 2 {len(run2)} (suppressed "
              f"{daemon.log_events('stopped')[-1]['suppressed']} re-found), 0 twice")
    finally:
        await stream.close()
        await offsets.reset()
        await daemon.aclose()
        await receiver.down()
