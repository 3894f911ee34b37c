"""Shutdown (SIGTERM/SIGINT), within ``shutdown_timeout_seconds``: stop consuming, process the
reorder buffer if every partition is idle (:meth:`PartitionPlan.flush_at_stop`), wait for every
sink to accept the alerts, commit offsets, disconnect. What is not processed or not accepted
by a sink is not committed: read again at the next start (or by the partition's next owner).

A stop while the stream is produced (every rolling deploy) leaves the buffer, about
``lateness_seconds`` of event time: the last fetch may have brought one partition's newest
records and not the others' of the same minutes, and processing that partition's tail alone
would raise alerts a replay does not (false ``log_gap``). The alerts raised on arrival of the
events left are sent again after the restart, with the same ``alert_id``."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from watchdog.daemon.kafka_client import FINISH_STEP

if TYPE_CHECKING:
    from watchdog.daemon.app import Service

CLOSE_SECONDS = 2.0  # for disconnecting every client at the end


async def shutdown(svc: Service) -> None:
    """Stop consuming, flush (if every partition is idle), drain the sinks, last commits."""
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
    if ws is not None:  # its buffer processed too (if every partition is idle), before the drain
        await ws.settle(max(0.1, min(FINISH_STEP, deadline - time.monotonic())))
    # MQTT cannot read again what it left (it keeps the flush); Kafka reads it again
    rereads = all(s.rereads for s in svc.sources)
    buffered = len(svc.pipeline.order)
    _log_positions(svc, buffered)
    if not svc.pipeline.flush_at_stop(rereads=rereads) and buffered:
        svc.log.info("shutdown_without_flush", buffered=buffered,
                      behind=[s.name for s in svc.sources if getattr(s, "behind", _never)()],
                      why="not every partition idle: the others' events of the same minutes "
                          "may not be read yet",
                      consequence="read again on the next start; alerts raised on their "
                                  "arrival are sent again (same alert_id)")
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
    # after the last release to the stage and the sinks' drain (deferred if an alert is still
    # in flight: see model_state), before the commit (MQTT: before the last checkpoint, which
    # holds the same events, and the acknowledgements)
    if svc.model_state is not None:
        budget = max(0.1, deadline - time.monotonic() - 2 * FINISH_STEP - CLOSE_SECONDS)
        try:
            async with asyncio.timeout(budget):
                await svc.model_state.save()
        except TimeoutError:
            svc.log.warning("model_state_save_timed_out",
                            consequence="the next start goes on from the previous save")
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


def _log_positions(svc: Service, buffered: int) -> None:
    """Debug: each partition where the shutdown decides whether to flush (what a flush would
    be judged on: a partition read further than the others, see :mod:`.shutdown`)."""
    order = svc.pipeline.order
    for src in svc.sources:
        positions = getattr(src, "positions", None)
        if positions is not None:
            svc.log.debug("shutdown_partitions", source=src.name, buffered=buffered,
                          watermark=order.watermark(), partitions=positions())


def _never() -> bool:
    return False
