"""kill -9 of the daemon in the middle of a stream, then a restart: no alert is lost.

The stream (~9k simulated events, 42 alerts of every rule but anomaly) is produced at
2,000 events/s while the daemon runs. When the daemon has committed about 30 % of it, it is
killed with SIGKILL: no flush, no final commit, alerts possibly in flight. The stream goes on
while it is down; the restarted daemon re-reads from its last commit (and one window horizon
before it to rebuild its windows). In the end every alert ``watchdog replay`` finds in the
same events is on the ``alerts`` topic (after deduplication by ``alert_id``; at-least-once
allows duplicates, which are counted), and nothing else is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import (
    Daemon,
    FaultWorld,
    Offsets,
    Stream,
    alerts_on_topic,
    duplicates,
    lost_and_extra,
    prepare_broker,
    until,
)

pytestmark = pytest.mark.integration


async def test_kill9_mid_stream_then_restart_loses_no_alert(
        tansu_broker, fault_world: FaultWorld, tmp_path: Path) -> None:
    w, bs = fault_world, tansu_broker.bootstrap_servers
    n = len(w.events)
    await prepare_broker(bs, w)
    daemon = Daemon(tmp_path, bs, w)
    stream = Stream(bs, w.events, rate=2000)
    offsets = Offsets(bs)
    try:
        daemon.start()
        await daemon.wait_consuming()
        stream.start()

        async def midway() -> bool:
            return sum((await offsets.committed()).values()) >= 0.3 * n

        await until(midway, within=30, what="the daemon to commit 30% of the stream")
        daemon.proc.stop(kill=True)  # SIGKILL
        assert daemon.proc.returncode == -9
        at_kill = await offsets.committed()
        assert stream.sent < n, "the kill must come in the middle of the stream"
        assert 0 < sum(at_kill.values()) < n
        before = set(await alerts_on_topic(bs))
        assert len(before) < len(w.expected), "the restarted daemon must have alerts to find"

        daemon.start()  # the stream goes on meanwhile
        await daemon.wait_consuming()
        await stream.done()
        ends = stream.ends()
        await until(lambda: offsets.reached(ends), within=45,
                    what="the restarted daemon to commit the whole stream")
        on_topic = await alerts_on_topic(bs)
        lost, extra = lost_and_extra(on_topic, w.expected)
        assert not lost, f"{len(lost)} alert(s) lost: {sorted(lost)}"
        assert not extra, f"alerts replay does not give: {sorted(extra)}"
        print(f"\nkill -9 at {sum(at_kill.values())}/{n} committed events, {len(before)} "
              f"alerts out; in the end {len(set(on_topic))} alerts, "
              f"{duplicates(on_topic)} duplicate record(s)")
        assert daemon.proc.stop() == 0
    finally:
        await stream.close()
        await offsets.reset()
        await daemon.aclose()
