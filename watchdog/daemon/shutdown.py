"""Shutdown (SIGTERM/SIGINT), within ``shutdown_timeout_seconds``: stop consuming, flush the
Detector (not while a backlog is read), wait for every sink to accept the alerts, commit
offsets, disconnect. What a sink has not accepted is not committed: read again at the next
start."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from watchdog.daemon.sources.kafka import FINISH_STEP

if TYPE_CHECKING:
    from watchdog.daemon.app import Service

CLOSE_SECONDS = 2.0  # for disconnecting every client at the end


async def shutdown(svc: Service) -> None:
    """Stop consuming, flush (unless a backlog is read), drain the sinks, last commits."""
    cfg = svc.cfg
    deadline = time.monotonic() + cfg.shutdown_timeout_seconds
    svc.stopping = True
    svc.metrics.ready.set(0)
    svc.notify.stopping()
    ws = svc.whole_stream
    for src in svc.sources:
        src.stop()
    if ws is not None:
        ws.stop()
    if svc.source_tasks:
        await asyncio.wait(svc.source_tasks, timeout=max(0.1, deadline - time.monotonic()))
    if ws is not None:  # its buffer processed too (unless behind), before the drain
        await ws.settle(max(0.1, min(FINISH_STEP, deadline - time.monotonic())))
    behind = [s.name for s in svc.sources if getattr(s, "behind", _never)()]
    if behind and all(hasattr(s, "behind") for s in svc.sources):
        # a backlog: partitions may be hours apart in event time, and a flush would process
        # their events out of order (spurious log_gap alerts, windows judged on half the
        # events). Held events keep their offsets uncommitted: read again on the next start.
        # (Not with a source that cannot re-read, e.g. MQTT: its buffered events would be
        # lost, so those setups still flush.)
        svc.log.info("shutdown_without_flush", sources=behind,
                      buffered=len(svc.pipeline.order),
                      consequence="buffered events are read again on the next start")
    else:
        svc.pipeline.flush()
    # leave time for the last commit, leaving the group and disconnecting
    budget = max(0.1, deadline - time.monotonic() - 2 * FINISH_STEP - CLOSE_SECONDS)
    try:
        async with asyncio.timeout(budget):
            await svc.delivery.drained()
            await svc.dlq.drained()
            if svc.archive is not None:
                await svc.archive.drain()
    except TimeoutError:
        svc.log.warning("shutdown_undelivered", alerts=svc.delivery.pending,
                         dead_letters=len(svc.dlq),
                         archive=svc.archive.pending if svc.archive else 0,
                         consequence="not committed: read again on the next start")
    # the whole-stream reader's last commit alongside the main one's (each bounded)
    side = asyncio.ensure_future(ws.finish()) if ws is not None else None
    for src in svc.sources:  # each bounds its own steps (FINISH_STEP)
        try:
            await src.finish()
        except Exception as err:
            svc.log.warning("source_finish_failed", source=src.name,
                             error=type(err).__name__)
    if side is not None:
        await side
    svc.log.info("stopped", processed=svc.pipeline.detector.processed,
                  suppressed=svc.pipeline.suppressed, rejected=svc.pipeline.rejected,
                  pending_alerts=svc.delivery.pending)

async def close(svc: Service) -> None:
    """Disconnect everything at once, within a short bound (the broker may be gone)."""
    closers = [sink.close() for sink in svc.sinks]
    if svc.whole_stream is not None:
        closers.append(svc.whole_stream.close())
    if svc.state is not None:
        closers.append(svc.state.close())
    if svc.producer is not None:
        closers.append(svc.producer.stop())
    if svc.health is not None:
        closers.append(svc.health.close())
    tasks = [asyncio.ensure_future(c) for c in closers]
    _, late = await asyncio.wait(tasks, timeout=CLOSE_SECONDS)
    for t in late:
        t.cancel()
    if late:
        svc.log.warning("close_timed_out", clients=len(late))


def _never() -> bool:
    return False
