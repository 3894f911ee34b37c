"""The Kafka broker is killed and restarted in the middle of the stream: the daemon notices,
reconnects by itself and loses nothing.

Tansu keeps its data on ``s3://`` (a local moto server), so topics, records and the group's
committed offsets survive the broker's death. The stream is produced at 2,000 events/s;
when the daemon has committed about 30 % of it the producer is parked at a chunk boundary
(events are then still in the daemon's reorder buffer, commits and alerts in flight) and the
broker gets SIGKILL. The test waits until the daemon reports the broker unreachable on
``/readyz``, starts the broker again on the same port, waits until the daemon is ready and
consuming all partitions again without any help, and resumes the stream. In the end the whole
stream is committed and every alert replay finds is on ``alerts`` (deduplicated by
``alert_id``), nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import FaultWorld, duplicates, streaming_daemon, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_broker_restart_mid_stream_loses_no_alert(
        tansu_s3_broker, fault_world: FaultWorld, tmp_path: Path) -> None:
    broker = tansu_s3_broker
    async with streaming_daemon(broker.bootstrap_servers, fault_world, tmp_path) as run:
        daemon, n = run.daemon, run.n
        await run.until_committed(0.3)
        await run.stream.park()
        await run.offsets.reset()
        broker.stop(kill=True)
        at_stop = run.stream.sent
        assert at_stop < n

        async def noticed() -> bool:
            status, body = await daemon.readyz()
            return status == 503 and "kafka broker unreachable" in body.get("reasons", [])

        await until(noticed, within=20, what="/readyz to report the broker unreachable")
        broker.restart()
        back = await daemon.wait_consuming(within=60)  # by itself: the test does nothing
        assert daemon.proc.running, "the daemon must survive the outage (no restart)"
        run.stream.resume()
        on_topic = await run.finish()
        print(f"\nbroker killed after {at_stop}/{n} events produced; daemon consuming again "
              f"{back:.1f}s after the broker restarted; {len(set(on_topic))} alerts, "
              f"{duplicates(on_topic)} duplicate record(s)")
        assert daemon.proc.stop() == 0
