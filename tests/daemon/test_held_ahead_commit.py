"""An event held ahead of the present holds its record's commit back until it is processed or
proven a stray (daemon/held_ahead.py): a resumed stream's first events are read again after a
crash, a stray dated 2099 does not block the commit while its stream goes on."""

from __future__ import annotations

from datetime import timedelta

import orjson

from tests.builders import BASE, event_doc
from tests.daemon.helpers import CollectAlerts, QuietLog, Rec, World
from tests.services.exposition import metric_value
from watchdog.daemon.held_ahead import STRAY_AFTER
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import Pipeline


def _raw(eid: str, seconds: float) -> bytes:
    return orjson.dumps(event_doc(id=eid, when=BASE + timedelta(seconds=seconds),
                                  resource="crm.customers"))


def _pipeline(world: World, metrics: Metrics) -> Pipeline:
    return Pipeline(world.engine(), CollectAlerts(), None, metrics, QuietLog(),  # type: ignore[arg-type]
                    lateness=1.0, future=600.0)


def test_a_resumed_streams_held_events_hold_the_commit_until_processed(world: World) -> None:
    m = Metrics()
    p = _pipeline(world, m)
    book = p.open_partition(0, 0).book
    assert book is not None
    p.ingest(0, [Rec(0, _raw("a", 0)), Rec(1, _raw("b", 3)), Rec(2, _raw("c", 10))], "t")
    p.mark_idle(0)  # a quiet spell: the buffer is flushed
    assert book.safe() == 3
    # the stream resumes an hour later: its first events are held ahead of the present
    p.ingest(0, [Rec(3, _raw("d", 3300)), Rec(4, _raw("e", 3340))], "t")
    assert p.order.held() == 2
    p.mark_idle(0)
    assert book.safe() == 3  # a kill -9 now reads them again
    # later records of the stream: the present follows them, nothing is a stray
    p.ingest(0, [Rec(5 + k, _raw(f"f{k}", 3350 + k)) for k in range(2 * STRAY_AFTER)], "t")
    p.ingest(0, [Rec(5 + 2 * STRAY_AFTER, _raw("g", 3400))], "t")
    assert p.order.held() == 0
    assert metric_value(m.future_strays) == 0
    p.flush()
    assert book.safe() == 6 + 2 * STRAY_AFTER


def test_a_stray_dated_2099_stops_holding_the_commit_once_its_stream_goes_on(
        world: World) -> None:
    m = Metrics()
    p = _pipeline(world, m)
    book = p.open_partition(0, 0).book
    assert book is not None
    p.ingest(0, [Rec(k, _raw(f"a{k}", k)) for k in range(5)], "t")
    p.ingest(0, [Rec(5, _raw("stray", 4_000_000_000 - BASE.timestamp()))], "t")
    p.mark_idle(0)
    assert p.order.held() == 1
    assert book.safe() == 5
    # fewer than STRAY_AFTER later records: not proven yet
    p.ingest(0, [Rec(6 + k, _raw(f"b{k}", 10 + k)) for k in range(STRAY_AFTER - 1)], "t")
    p.mark_idle(0)
    assert metric_value(m.future_strays) == 0
    assert book.safe() == 5
    p.ingest(0, [Rec(5 + STRAY_AFTER, _raw("c", 20))], "t")
    assert metric_value(m.future_strays) == 1
    assert p.order.held() == 1  # still held apart, moving no watermark
    p.mark_idle(0)
    assert book.safe() == 6 + STRAY_AFTER  # the commit passes the stray
    p.flush()  # processed at shutdown, where replay processes it (last)
    assert p.order.held() == 0
    assert book.safe() == 6 + STRAY_AFTER
