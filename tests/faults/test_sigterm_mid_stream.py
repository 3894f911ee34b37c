"""SIGTERM in the middle of a live multi-partition stream (every Kubernetes rolling deploy),
then a restart: exactly replay's alerts, ``log_gap`` included, none lost, none false.

The stream (~9k simulated events over four partitions, 42 alerts of every rule but anomaly)
is produced at 2,000 events/s while the daemon (a real process, the real Tansu broker) reads
it. When it has consumed 68 % (many alerts are completed about there) it gets SIGTERM while
the producer goes on, and is started again at once. Its last fetch may have brought one
partition's newest records and not the other partitions' records of the same minutes: a
shutdown that processed its reorder buffer then judged that partition's tail without them,
and ``log_gap`` saw sequence gaps that are not there (false alerts a replay of the same events
does not give). The buffer is now processed at a stop only when every partition is idle; else
it is left, its records uncommitted, for the next start (:meth:`PartitionPlan.flush_at_stop`).
What that costs, and what is asserted: an alert raised on arrival of an event still buffered
may reach the sinks again after the restart (same ``alert_id``, counted, at most the first
run's); nothing else. The audit trail and the JSONL sink skip them (they remember the ids of
their file's last lines at start): each alert is one line there, and the chain verifies.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from tests.faults.harness import (
    FaultWorld,
    alerts_on_topic,
    duplicates,
    streaming_daemon,
    until,
)
from watchdog.audit import verify

pytestmark = pytest.mark.integration


async def test_sigterm_mid_stream_then_restart_gives_replays_alerts(
        tansu_broker, fault_world: FaultWorld, tmp_path: Path) -> None:
    w = fault_world
    trail, jsonl = tmp_path / "audit.jsonl", tmp_path / "alerts.jsonl"
    # each chunk of 200 events (~45 min of event time) reaches the partitions one after the
    # other, 25 ms apart: most of the time some partitions have been read further than others
    async with streaming_daemon(tansu_broker.bootstrap_servers, w, tmp_path, chunk=200,
                                stagger=0.025,
                                # each partition where the shutdown decided, in its log
                                log_level="debug",
                                sinks={"kafka": {}, "jsonl": {"path": str(jsonl)},
                                       "audit": {"path": str(trail)}}) as run:
        daemon, n = run.daemon, run.n

        async def consumed() -> bool:  # where the alerts are many: some are in the buffer
            return await daemon.events_total() >= 0.68 * n

        await until(consumed, within=60, what="the daemon to consume 68% of the stream",
                    interval=0.05)
        sent = run.stream.sent
        code = await asyncio.to_thread(daemon.proc.stop)  # SIGTERM; the stream goes on
        assert code == 0
        at_stop = await run.offsets.committed()
        assert sent < n, "SIGTERM must come in the middle of the stream"
        assert 0 < sum(at_stop.values()) < n
        first = await alerts_on_topic(run.bootstrap)
        # nothing false sent by the first run, whatever its last fetch had brought
        extra = set(first) - set(w.expected)
        stopping = daemon.log_events("shutdown_partitions")
        assert not extra, (f"the first run sent alerts replay does not give: {sorted(extra)}; "
                           f"at its stop: {stopping}")

        daemon.start()
        await daemon.wait_consuming()
        on_topic = await run.finish("the restarted daemon to commit the whole stream")
        # only alerts sent by the first run come twice (raised on arrival of events it left
        # in its buffer, uncommitted), each at most twice
        again = {a for a in on_topic if on_topic.count(a) > 1}
        assert again <= set(first)
        assert duplicates(on_topic) == len(again)
        # ... but once only in the audit trail and the JSONL file, the chain intact
        in_trail = [orjson.loads(x)["alert"]["alert_id"] for x in trail.read_bytes().splitlines()]
        in_jsonl = [orjson.loads(x)["alert_id"] for x in jsonl.read_bytes().splitlines()]
        assert sorted(in_trail) == sorted(set(on_topic)), "each alert once in the audit trail"
        assert sorted(in_jsonl) == sorted(set(on_topic)), "each alert once in the JSONL file"
        result = verify(trail, require_head=True)
        assert result.ok, result.problem
        print(f"\nSIGTERM at {sum(at_stop.values())}/{n} committed, {len(set(first))} alerts "
              f"out, at the stop: {stopping}; in the end "
              f"{len(set(on_topic))} alerts, {duplicates(on_topic)} sent again; audit trail "
              f"{len(in_trail)} lines, JSONL {len(in_jsonl)}")
        assert daemon.proc.stop() == 0
