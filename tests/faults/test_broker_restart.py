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

Two settings keep Tansu-on-moto from starving the reader (what is checked is unchanged):

- Tansu spends a fetch's ``max_wait`` on its storage reads: per partition it lists the
  partition's batch objects on S3, and once the wait is used up it stops and returns nothing
  for that partition. moto lists in time linear in the objects under the prefix (~6 ms at 10,
  80-130 ms at 300-600 here), and this stream writes one object per ~12-record batch. With the
  daemon's default 50 ms wait most fetches came back empty once the partitions had grown: it
  read 5-30 events a second with over a thousand behind per partition, and the test failed 6
  of 8 runs (the stream produced whole before 30 % was committed, or the 240 s bound). 8,000
  records produced this way, read by a plain consumer: 27-48/s at 50 ms, 1,300/s at 500 ms.
  The daemon here waits 500 ms (``kafka.fetch_max_wait_ms``, aiokafka's default); a Kafka
  broker answers as soon as records arrive either way.
- The stream parks by itself at two thirds (``park_at``) if the daemon has not committed 30 %
  by then, so that the broker is always killed mid-stream.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import FaultWorld, duplicates, streaming_daemon, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_broker_restart_mid_stream_loses_no_alert(
        tansu_s3_broker, fault_world: FaultWorld, tmp_path: Path) -> None:
    broker = tansu_s3_broker
    n = len(fault_world.events)
    async with streaming_daemon(broker.bootstrap_servers, fault_world, tmp_path,
                                park_at=2 * n // 3, kafka={"fetch_max_wait_ms": 500}) as run:
        daemon = run.daemon
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
