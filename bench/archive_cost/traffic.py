"""The simulated organisation whose events the sink alone and the bench's daemons take."""

from __future__ import annotations

import orjson

from watchdog.simulate import SimConfig, World, build_world


def bench_world(n: int, warm: int = 0) -> tuple[World, list[bytes]]:
    """A world of ``n // 220`` accounts (at least 100) over 10 days, and its first ``warm + n``
    events as JSON; ``warm`` (``--live``): the same accounts over as many more days as the
    warm-up's events need."""
    world = build_world(SimConfig(accounts=max(100, n // 220),
                                  days=10 + -(-10 * warm // n)))
    events = []
    for ev in world.events():
        events.append(orjson.dumps(ev))
        if len(events) >= warm + n:
            break
    return world, events
