"""The alert receiver is down for ~25 s (shortened from the minute of the issue, to keep the
suite lean): consumption pauses and commits hold, nothing is dropped, and once it is back
every alert is delivered.

The daemon's only sink is a webhook at a local HTTP receiver. The stream (~9k events, 42
alerts) is produced at 1,000 events/s, so most of it arrives after the daemon has paused: the
lag gauge must show those records piling up, though a paused partition is not fetched. For
the first ~12 s nothing listens on the receiver's port (connection refused), for the next
~12 s it answers every POST with ``503``; then it accepts.
``delivery.max_pending`` is 2, so the daemon stops consuming once 2 alerts wait for the sink.

During the outage, sampled every 0.5 s: the receiver got nothing; for every partition the
group's committed offset is at or below the offset of the earliest event that completes one
of replay's alerts in that partition (no offset is committed past an undelivered alert);
and the daemon has raised alerts, counted webhook errors, and stopped consuming: over the
whole 503 phase its consumed-event count does not move while part of the stream is still
unread (lag > 0: paused, not dropping). After the receiver comes back, every
alert replay finds reaches it exactly once, nothing else does, and the whole stream ends up
committed.
"""

from __future__ import annotations

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
    lost_and_extra,
    prepare_broker,
    until,
)
from tests.services.exposition import total

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REFUSED_SECONDS = 12.0  # nothing listens
ERROR_SECONDS = 12.0  # then 503 for every POST


async def test_webhook_down_pauses_commits_and_delivers_everything_after(
        tansu_broker, fault_world: FaultWorld, tmp_path: Path) -> None:
    w, bs = fault_world, tansu_broker.bootstrap_servers
    n = len(w.events)
    await prepare_broker(bs, w)
    receiver = Receiver()  # not listening yet
    # the stream runs hours of event time per second: a partition whose first record comes a
    # few seconds in must not be taken for idle meanwhile, or its records would arrive hours
    # behind the watermark (disorder no real source has, taken for sequence gaps)
    daemon = Daemon(tmp_path, bs, w, kafka={"max_poll_records": 200, "idle_after_seconds": 15.0},
                    sinks={"webhook": {"url": receiver.url, "timeout_seconds": 2}},
                    delivery={"max_pending": 2})
    stream = Stream(bs, w.events, rate=1000, chunk=100)
    offsets = Offsets(bs)
    try:
        daemon.start()
        await daemon.wait_consuming()
        stream.start()
        await stream.done()
        ends = stream.ends()
        # the offset of the first alert-completing event of each partition: while no alert
        # is delivered, nothing at or past it may be committed
        bound = dict(ends)
        for eid in w.expected.values():
            if eid not in stream.where:  # an obligation cites the record that started it
                continue
            p, off = stream.where[eid]
            bound[p] = min(bound[p], off)

        samples = 0
        committed: dict[int, int] = {}

        async def hold_and_sample(seconds: float) -> None:
            nonlocal samples, committed
            t_end = time.monotonic() + seconds

            async def over() -> bool:
                nonlocal samples, committed
                committed = await offsets.committed()
                samples += 1
                assert all(committed[p] <= bound[p] for p in bound), (
                    f"committed {committed} past an undelivered alert (bounds {bound})")
                assert not receiver.ids
                return time.monotonic() >= t_end

            await until(over, within=seconds + 10, what="the outage to last", interval=0.5)

        t0 = time.monotonic()
        await hold_and_sample(REFUSED_SECONDS)
        await receiver.up("error")
        consumed = await daemon.events_total()
        await hold_and_sample(ERROR_SECONDS)
        outage = time.monotonic() - t0
        assert receiver.refused > 0, "the daemon retried against the 503s"
        m = await daemon.metrics()
        raised = total(m, "watchdog_alerts_total")
        lag = sum(v for k, v in m.items() if k.startswith('watchdog_consumer_lag{')
                  and 'topic="access-logs"' in k)
        assert raised >= 2
        assert total(m, "watchdog_events_total") == consumed, "consumption must pause"
        assert m.get('watchdog_sink_errors_total{sink="webhook"}', 0) > 0
        assert lag > 0, "consumption must pause with part of the stream unread"
        assert total(m, "watchdog_events_total") < n
        assert sum(committed.values()) < n

        receiver.mode = "ok"  # back
        t1 = time.monotonic()

        async def delivered() -> bool:
            return set(receiver.ids) >= set(w.expected) and await offsets.reached(ends)

        await until(delivered, within=60, what="every alert delivered and the stream committed")
        recovery = time.monotonic() - t1
        lost, extra = lost_and_extra(receiver.ids, w.expected)
        assert not lost, f"{len(lost)} alert(s) lost: {sorted(lost)}"
        assert not extra, f"alerts replay does not give: {sorted(extra)}"
        assert max(Counter(receiver.ids).values()) == 1, "an alert was delivered twice"
        print(f"\nwebhook down {outage:.0f}s ({samples} samples, {receiver.refused} POSTs "
              f"refused with 503, {raised:.0f} alerts raised, {consumed:.0f} events consumed, "
              f"lag {lag:.0f}, committed "
              f"{sum(committed.values())}/{n}); all {len(w.expected)} alerts delivered "
              f"{recovery:.1f}s after it came back")
        assert daemon.proc.stop() == 0
    finally:
        await stream.close()
        await offsets.reset()
        await daemon.aclose()
        await receiver.down()
