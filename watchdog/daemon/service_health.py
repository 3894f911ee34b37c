"""What ``/healthz`` (alive: every loop ticks) and ``/readyz`` (ready: state loaded, broker
reachable, partitions assigned, no sink stalled) say about the service, with the reasons;
``/readyz`` also lists the partitions, the idle ones and the records behind each one's end."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from watchdog.daemon.app import Service


def alive(svc: Service) -> tuple[bool, dict[str, Any]]:
    now = time.monotonic()
    stall = svc.cfg.stall_seconds
    stalled = [s.name for s in svc.sources if not s.alive(now)]
    if svc.state is not None and svc.started.is_set() and not svc.state.alive(now):
        stalled.append("state")
    if now - svc.tick_at >= stall:
        stalled.append("housekeeping")
    return not stalled, {"stalled": stalled} if stalled else {}


def readiness(svc: Service) -> tuple[bool, dict[str, Any]]:
    why = []
    if svc.stopping:
        why.append("shutting down")
    if svc.state is not None:
        if not svc.state.loaded.is_set():
            why.append("directory/subjects not read to their end yet")
        if not svc.state.broker_ok:
            why.append("kafka broker unreachable")
    if not svc.started.is_set():
        why.append("not consuming yet")
    why.extend(f"{s.name} not connected" for s in svc.sources if not s.ready)
    now = time.monotonic()
    limit = svc.cfg.delivery.stall_seconds
    why.extend(f"sink {box.name} accepted nothing for {box.stalled_for(now):.0f}s "
               "(offsets wait for it)" for box in svc.outboxes()
               if box.stalled_for(now) >= limit)
    if not svc.joined and any(s.name == "kafka" for s in svc.sources):
        why.append("no partitions assigned yet (joining the consumer group)")
    detail: dict[str, Any] = {"reasons": why} if why else {}
    kafka = next((s for s in svc.sources if s.name == "kafka"), None)
    assignment = getattr(kafka, "assigned", None)
    if assignment is not None:
        detail["partitions"] = sorted(assignment)
        # caught up and quiet: a stop now processes the reorder buffer (else it is left for
        # the next start: PartitionPlan.flush_at_stop)
        parts = svc.pipeline.partitions
        detail["idle"] = sorted(p for p in assignment if p in parts and parts[p].idle)
        # records behind each partition's end (watchdog_consumer_lag): a backlog does not make
        # the instance unready (a rollout would wait for it), but the probe says it
        lags = getattr(kafka, "lags", None)
        if lags is not None:
            detail["lag"] = {str(p): n for p, n in sorted(lags().items())}
    return not why, detail
