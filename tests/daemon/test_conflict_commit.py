"""A record whose event reused the id of an event still buffered (an id conflict) is held
like any other: the commit may not pass it before it is processed."""

from __future__ import annotations

from datetime import timedelta

import orjson

from tests.builders import BASE, event_doc
from tests.daemon.helpers import CollectAlerts, QuietLog, Rec, World
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import Pipeline


def _raw(eid: str, seconds: float, resource: str) -> bytes:
    return orjson.dumps(event_doc(id=eid, when=BASE + timedelta(seconds=seconds),
                                  resource=resource))


def _pipeline(world: World) -> Pipeline:
    return Pipeline(world.engine(), CollectAlerts(), None, Metrics(), QuietLog(),  # type: ignore[arg-type]
                    lateness=60.0)


def test_a_conflicting_version_buffered_behind_the_first_holds_the_commit(
        world: World) -> None:
    p = _pipeline(world)
    book = p.open_partition(0, 0).book
    assert book is not None
    p.ingest(0, [Rec(0, _raw("x", 0, "crm.customers")),
                 Rec(1, _raw("x", 300, "crm.orders")),  # the same id, other content, later
                 Rec(2, _raw("y", 100, "crm.customers"))], "events")
    # the watermark (100 - 60) released the first version only: its conflicting namesake is
    # still buffered, so the commit stops at its record
    assert book.safe() == 1
    p.flush()
    assert book.safe() == 3


def test_a_conflicting_version_processed_first_does_not_release_the_first(world: World) -> None:
    p = _pipeline(world)
    book = p.open_partition(0, 0).book
    assert book is not None
    p.ingest(0, [Rec(0, _raw("x", 300, "crm.customers")),
                 Rec(1, _raw("x", 0, "crm.orders")),  # the same id, other content, earlier
                 Rec(2, _raw("y", 100, "crm.customers"))], "events")
    # the conflicting version (time 0) is released, the first (time 300) is not: its record
    # stays held
    assert book.safe() == 0
    p.flush()
    assert book.safe() == 3
