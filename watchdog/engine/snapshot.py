"""The detector's state as plain data, and back: what a checkpoint of a stream that cannot be
read again (MQTT) keeps, so that windows built from messages already acknowledged survive a
crash (:mod:`watchdog.daemon.checkpoint` writes and reads it).

Pure: no I/O. Kept: each rule's own state (:meth:`RuleBase.snapshot`: brute_force's, bulk_export's
and reidentification's windows, log_gap's datasets, password_expired's alerted changes, the
obligations' open requests), the engine's due-time queue with the point before which every
deadline was judged, where the reorder buffer's releasing got to and the recent arrivals it
judges the present on, and ``done``: ids of events already processed whose messages may be
delivered again (the broker redelivers what was not acknowledged; those are duplicates).

Not kept: the events still in the reorder buffer (their messages are not acknowledged: they come
again), the directory, register and accounts (read again from their topics at every start),
alert ids sent (a redelivered event still buffered at the crash may raise its alert twice,
never lose it) and the stages' state (the anomaly model's scoring windows).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from watchdog.engine.detector import Detector


def capture(detector: Detector, done: Iterable[str]) -> dict[str, Any]:
    """The state after every event released so far (call it between two pushes)."""
    engine = detector.engine
    order = detector.order.snapshot()
    return {
        "rules": {r.id: s for r in engine.rules if (s := r.snapshot()) is not None},
        "due": engine.due.snapshot([ob.id for ob in engine.obligations]),
        # every deadline before the last event released was judged (at the first event past
        # it): the engine must not open those again when it reads their records at a start
        "judged_before": order["released_upto"],
        "order": order,
        "processed": detector.processed,
        "done": list(done),
    }


def restore(detector: Detector, snap: dict[str, Any]) -> list[str]:
    """Into a fresh detector (before any event or record): returns the ids of the rules the
    snapshot had state for that this engine does not run (their state is dropped)."""
    engine = detector.engine
    by_id = {r.id: r for r in engine.rules}
    unknown = []
    for rule_id, state in snap["rules"].items():
        rule = by_id.get(rule_id)
        if rule is None:
            unknown.append(rule_id)
        else:
            rule.restore(state)
    engine.due.restore(snap["due"], [ob.id for ob in engine.obligations],
                       snap["judged_before"])
    detector.order.restore(snap["order"], snap["done"])
    detector.processed = snap["processed"]
    return unknown
