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

from tests.faults.harness import FaultWorld, alerts_on_topic, duplicates, streaming_daemon

pytestmark = pytest.mark.integration


async def test_kill9_mid_stream_then_restart_loses_no_alert(
        tansu_broker, fault_world: FaultWorld, tmp_path: Path) -> None:
    async with streaming_daemon(tansu_broker.bootstrap_servers, fault_world, tmp_path) as run:
        daemon, n = run.daemon, run.n
        await run.until_committed(0.3)
        daemon.proc.stop(kill=True)  # SIGKILL
        assert daemon.proc.returncode == -9
        at_kill = await run.offsets.committed()
        assert run.stream.sent < n, "the kill must come in the middle of the stream"
        assert 0 < sum(at_kill.values()) < n
        before = set(await alerts_on_topic(run.bootstrap))
        assert len(before) < len(fault_world.expected), (
            "the restarted daemon must have alerts to find")

        daemon.start()  # the stream goes on meanwhile
        await daemon.wait_consuming()
        on_topic = await run.finish("the restarted daemon to commit the whole stream")
        print(f"\nkill -9 at {sum(at_kill.values())}/{n} committed events, {len(before)} "
              f"alerts out; in the end {len(set(on_topic))} alerts, "
              f"{duplicates(on_topic)} duplicate record(s)")
        assert daemon.proc.stop() == 0
