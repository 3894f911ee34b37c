"""The service's periodic work, four times a second: idle streams, stages' ticks, gauges of
queues and state, the systemd watchdog and status; and the broker probe for ``/readyz``."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog.daemon.app import Service
    from watchdog.daemon.sources.kafka_state import StateTopics

HOUSEKEEPING = 0.25  # seconds between ticks: idle streams, gauges, systemd watchdog
# state sizes walk the rules' windows (distinct accounts of a large organisation's windows:
# milliseconds); a gauge that moves slowly needs no update four times a second
STATE_SIZES_SECONDS = 2.0
PROBE_SECONDS = 5.0


async def housekeeping(svc: Service) -> None:
    m, p = svc.metrics, svc.pipeline
    engine = svc.engine
    mqtt_idle = svc.cfg.mqtt.idle_after_seconds if svc.cfg.mqtt else 5.0
    last_status = last_sizes = 0.0
    while True:
        now = svc.tick_at = time.monotonic()
        for src in svc.sources:
            tick = getattr(src, "tick", None)
            if tick is not None:
                tick(now, mqtt_idle)
            if src.name == "mqtt":
                m.mqtt_unacked.set(getattr(src, "unacked", 0))
        if svc.labels is not None:
            svc.labels.check(now)  # before the tick scores: a new label applies at once
        p.tick()
        m.q_alerts.set(svc.delivery.pending)
        m.q_reorder.set(len(p.order))
        if now - last_sizes >= STATE_SIZES_SECONDS:
            last_sizes = now
            m.s_directory.set(len(engine.directory))
            m.s_subjects.set(len(engine.register))
            m.accounts.set(max(engine.window_sizes(), default=0))
            m.state_forgetting(engine.forgetting())  # windows and datasets: kept, forgotten
            for rule, n in engine.open_obligations().items():
                m.obligations_open.labels(rule).set(n)
        wm = p.order.watermark()
        if wm != float("-inf"):
            m.watermark.set(wm)
        for box in svc.outboxes():
            m.sink_stalled.labels(box.name).set(box.stalled_for(now))
        ready, _ = svc.readiness()
        m.ready.set(1 if ready else 0)
        progressing = svc.started.is_set() and all(s.alive(now) for s in svc.sources)
        svc.notify.tick(progressing)
        if now - last_status >= 10.0:
            last_status = now
            lags: list[dict[int, int]] = [getattr(src, "lags", dict)() for src in svc.sources]
            behind = sum(n for lag in lags for n in lag.values())  # watchdog_consumer_lag
            svc.notify.status(f"processed {p.detector.processed} events, "
                              f"{svc.delivery.pending} alerts pending, {behind} records behind")
        await asyncio.sleep(HOUSEKEEPING)


async def probe(state: StateTopics) -> None:
    """Is the broker reachable? Asked every few seconds for ``/readyz``."""
    while True:
        await asyncio.sleep(PROBE_SECONDS)
        await state.probe()
