"""What happens once the detector has spoken: released events let go of their records, and
each alert goes to the sinks holding the record of the event that completed it.

An alert is not sent (counted as deduplicated) when it was completed by a re-read event (it
was sent before the restart), when it judges a whole dataset from a partial view of it
(:data:`WHOLE_STREAM_RULES`: the whole-stream reader sends those), or when its id was sent
already, by this pipeline or by the one it shares its alert ids with.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from watchdog.alerts.model import Alert
from watchdog.daemon.alert_ids import AlertIds
from watchdog.daemon.delivery import Delivery
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.record_meta import Meta, lowest
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import Released

# rules that judge a whole dataset, whose events are spread over every partition: an instance
# that owns only some partitions would take the others' events for gaps and silences; and the
# obligations (1.1), judged when the whole stream's event time passes a deadline (on the
# deletes of every partition): one instance raises each of them
WHOLE_STREAM_RULES = frozenset({"log_gap", "account_not_revoked", "erasure_overdue"})


class Dispatch:
    """Shares the pipeline's record bookkeeping (``meta``: by event id; ``variants``: records
    of events that reused a buffered event's id, by the event object)."""

    def __init__(self, engine: Engine, delivery: Delivery, metrics: Metrics,
                 alert_ids: AlertIds, meta: dict[str, Meta], variants: dict[int, Meta], *,
                 counted: bool) -> None:
        self.engine = engine
        self.delivery = delivery
        self.metrics = metrics
        self.alert_ids = alert_ids
        self.meta = meta
        self.variants = variants
        self.counted = counted  # the whole-stream pipeline counts nothing (the main one does)
        self.partial_view = False  # this instance owns only some partitions of the topic
        self.suppressed = 0

    def released(self, released: Released, found: list[Alert]) -> None:
        """The detector released these events (their records' commits may pass) and found
        these alerts."""
        meta, variants = self.meta, self.variants
        rel: dict[str, Meta] = {}
        for ev, _t in released:
            eid = ev.event.id
            m = variants.pop(id(ev), None) if variants else None
            if m is None:
                m = meta.pop(eid, None)
            if m is None:
                continue
            if m[0] is not None:
                m[0].release(m[1], eid)
            if found:
                rel[eid] = m
        if found:
            self._send(found, rel)

    def hold_back(self, alerts: Sequence[Alert]) -> list[Alert]:
        """``alerts`` without the whole-stream rules' (not sent, counted as deduplicated), as
        from a partial view."""
        kept = [a for a in alerts if a.rule not in WHOLE_STREAM_RULES]
        if (n := len(alerts) - len(kept)):
            if self.counted:
                self.metrics.deduplicated.inc(n)
            self.suppressed += n
        return kept

    def _send(self, alerts: list[Alert], rel: dict[str, Meta]) -> None:
        metrics, submit, sent = self.metrics, self.delivery.submit, self.alert_ids
        partial = self.partial_view
        meta = self.meta
        judged_at = self.engine.judged_at
        for a in alerts:
            m = None
            if a.event_ids:
                eid = a.event_ids[-1]
                if judged_at:
                    eid = judged_at.pop(a.alert_id, eid)
                # an early alert's event is still in the reorder buffer: its record is in meta
                m = rel.get(eid) or meta.get(eid)
            if ((m is not None and m[3]) or (partial and a.rule in WHOLE_STREAM_RULES)
                    or sent.seen(a.alert_id)):
                if self.counted:
                    metrics.deduplicated.inc()
                self.suppressed += 1
                continue
            metrics.count_alert(a.rule, a.severity, a.user_id)
            if m is None:
                submit(a, None, -1, time.monotonic())
            else:
                submit(a, m[0], lowest(a.event_ids, m, rel, meta), m[2])
