"""Live equals replay: the daemon's pipeline against ``watchdog replay`` of the same events.

The Pipeline (decode, reorder buffer, idle flushes, bookkeeping: what the daemon runs between
its sources and its sinks) is fed an organisation's events as Kafka would deliver them: in
groups produced one after the other with an idle pause between them (every partition caught up
and quiet), each partition in its own order, the partitions interleaved in any way, some
records delivered twice, a few stray events far ahead of the others (a host whose clock is a
day, or decades, ahead) among them, and timestamps spread over the years the decoder accepts
(1970..2100). Replay reads the same events from a file in event-time order. The alerts must be
the same: no stray, no pause and no interleaving may make an event late.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import event, given, note
from hypothesis import strategies as st

from tests.daemon.helpers import CollectAlerts, NoDeadLetters, QuietLog
from tests.fuzz._live_broker import comparable
from tests.fuzz._scenarios import build, scenarios, unique_ids
from tests.fuzz._support import fuzz, grouped_times
from watchdog.alerts.model import encode_alert
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.base import Raw
from watchdog.files.jsonl import RejectedWriter
from watchdog.replay import replay

LAST = 4102444799.0  # 2099-12-31T23:59:59Z, the latest time the decoder accepts
DAY = 86400.0


def _stamp(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any]:
    sc = unique_ids(draw(scenarios(max_events=30)))
    n = len(sc["events"])
    future = draw(st.sampled_from((600.0, 3600.0, DAY)))
    # (not 0: with no lateness at all, two events of the very same time on two partitions are
    # ordered by arrival, a tie the buffer releases at the watermark)
    lateness = draw(st.sampled_from((1.0, 60.0, 300.0, 3600.0)))
    groups = draw(st.integers(1, 3))
    span = draw(st.sampled_from((60.0, 3600.0, 6 * 3600.0)))
    starts, group, times = grouped_times(draw, n, groups, span)
    parts = [draw(st.integers(0, 2)) for _ in range(n)]
    # arrival: group by group; within one, each partition in time order, interleaved anyhow
    arrival: list[int] = []
    for g in range(groups):
        queues: dict[int, list[int]] = {}
        for i in sorted((i for i in range(n) if group[i] == g), key=lambda i: times[i]):
            queues.setdefault(parts[i], []).append(i)
        while queues:
            p = draw(st.sampled_from(sorted(queues)))
            arrival.append(queues[p].pop(0))
            if not queues[p]:
                del queues[p]
        arrival.append(-1 - g)  # an idle pause after the group
    # strays: at most two, never among the first four arrivals, four apart at least; each far
    # ahead of everything produced with it (and maybe among a later group, or at 2099)
    strays: dict[int, float] = {}
    candidates = [k for k, i in enumerate(arrival) if i >= 0][4:]
    for _ in range(draw(st.integers(0, 2))):
        free = [k for k in candidates if all(abs(k - s) > 4 for s in strays)]
        if not free:
            break
        k = draw(st.sampled_from(free))
        i = arrival[k]
        lo = starts[group[i]] + span + future + 1
        if lo >= LAST:
            continue
        strays[k] = draw(st.one_of(st.floats(lo, min(lo + 2 * DAY, LAST)), st.floats(lo, LAST),
                                   st.just(LAST)))
    for k, t in strays.items():
        times[arrival[k]] = t
    copies = {k for k, i in enumerate(arrival) if i >= 0 and draw(st.integers(0, 9)) == 0}
    docs = []
    for i, doc in enumerate(sc["events"]):
        docs.append(msgspec.json.encode({**doc, "@timestamp": _stamp(times[i])}))
    return {"sc": sc, "docs": docs, "parts": parts, "arrival": arrival, "copies": copies,
            "future": future, "strays": len(strays), "times": times, "lateness": lateness}


def _replayed(case: dict[str, Any]) -> set[bytes]:
    engine, _ = build(case["sc"])
    order = sorted(range(len(case["docs"])), key=lambda i: case["times"][i])
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "events.jsonl"
        path.write_bytes(b"".join(case["docs"][i] + b"\n" for i in order))
        out = io.BytesIO()
        rejected = RejectedWriter(Path(d) / "rejected.jsonl")
        replay(str(path), out, engine, rejected=rejected)
        rejected.close()
        assert rejected.count == 0
    return comparable(out.getvalue().splitlines())


def _live(case: dict[str, Any]) -> tuple[set[bytes], Pipeline]:
    engine, _ = build(case["sc"])
    delivery = CollectAlerts()
    pipeline = Pipeline(engine, delivery, NoDeadLetters(), Metrics(),  # type: ignore[arg-type]
                        QuietLog(), lateness=case["lateness"],
                        future=case["future"])
    parts = sorted(set(case["parts"]))
    for p in parts:
        pipeline.open_partition(p, 0)
    offsets = dict.fromkeys(parts, 0)
    batch: list[Raw] = []
    batch_p = -1

    def send() -> None:
        nonlocal batch
        if batch:
            pipeline.ingest(batch_p, batch, "access-logs")
            batch = []

    for k, i in enumerate(case["arrival"]):
        if i < 0:  # an idle pause: every partition caught up and quiet
            send()
            for p in parts:
                pipeline.mark_idle(p)
            continue
        p = case["parts"][i]
        if p != batch_p:
            send()
            batch_p = p
        for _ in range(2 if k in case["copies"] else 1):
            batch.append(Raw(case["docs"][i], offsets[p], p))
            offsets[p] += 1
    send()
    pipeline.flush()  # shutdown, not in a backlog
    return comparable([encode_alert(a) for a in delivery.alerts]), pipeline


@fuzz("order_live", 40, slow=True)
@given(case=deliveries())
def test_the_daemon_gives_the_alerts_replay_gives(case: dict[str, Any]) -> None:
    live, pipeline = _live(case)
    stats = pipeline.order.stats
    note(f"late={stats.late} ahead={stats.ahead} strays={case['strays']}")
    assert stats.late == 0, "an event was made late"
    assert live == _replayed(case)
    assert all(b.safe() == b.next for b in pipeline.books.values()), "an offset not released"
    event(f"strays={case['strays']}")
    event(f"held={min(stats.ahead, 3)}")
