"""Records that are not valid events: counted by reason, the first few logged (one line each,
where they are), and forwarded untouched to the dead-letter topic, which holds the record's
commit until it is accepted. And valid events whose processing raised (a bug,
:mod:`watchdog.engine.faults`): counted as ``processing_error``, logged, skipped."""

from __future__ import annotations

from typing import Any, Protocol

from watchdog.daemon.deadletter import DeadLetter
from watchdog.daemon.delivery import Outbox
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook
from watchdog.decode import Rejection
from watchdog.engine.faults import REASON, fault_site

LOG_FIRST_REJECTIONS = 20


class RecordLike(Protocol):
    """What a source hands in: aiokafka's ConsumerRecord, or :class:`~.sources.base.Raw`."""

    @property
    def value(self) -> bytes | None: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def offset(self) -> int: ...

    @property
    def partition(self) -> int: ...


class Rejections:
    def __init__(self, dead_letters: Outbox[DeadLetter], metrics: Metrics, log: Any, *,
                 counted: bool = True, dead_letter: bool = True) -> None:
        """``counted=False``: a second view of records another pipeline counts, logs and
        dead-letters (the whole-stream reader); ``dead_letter=False``: the anomaly service
        (the rules service, reading the same records, dead-letters them)."""
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.log = log
        self.counted = counted
        self.dead_letter = dead_letter
        self.count = 0
        self.failures = 0

    def reject(self, rej: Rejection, rec: RecordLike, topic: str,
               book: PartitionBook | None) -> None:
        self.count += 1
        if not self.counted:
            return
        self.metrics.count_invalid(rej.reason)
        if self.count <= LOG_FIRST_REJECTIONS:
            self.log.warning("rejected", reason=rej.reason, detail=rej.detail[:200],
                             topic=topic, partition=rec.partition, offset=rec.offset)
        elif self.count == LOG_FIRST_REJECTIONS + 1:
            self.log.warning("rejections_not_logged_further",
                             hint="counted in watchdog_events_invalid_total; " + (
                                 "all in the DLQ" if self.dead_letter else
                                 "the rules service dead-letters them"))
        if not self.dead_letter:
            return
        if book is not None:
            book.add_inflight(rec.offset)
        self.dead_letters.put(DeadLetter(rec.value or b"", rec.key, rej.reason, rej.detail,
                                         topic, rec.partition, rec.offset, book))

    def stage_failed(self, stage: str, events: int, err: Exception) -> None:
        """A stage's call over a released list raised (a bug in the stage): the list's events
        went through the rules, not through that stage. Counted once per call."""
        self._fault("stage_failed", err, f"{stage} skipped these events (the rules judged "
                    "them): behaviour alerts they would raise are missing", stage=stage,
                    events=events)

    def failed(self, err: Exception, **where: Any) -> None:
        """An event that decoded and validated but whose processing raised: skipped."""
        self._fault("processing_failed", err,
                    "event skipped: alerts it would raise are missing", **where)

    def _fault(self, what: str, err: Exception, consequence: str, **where: Any) -> None:
        """A bug met on the way (:mod:`watchdog.engine.faults`): counted, said (the first
        ones), never its message."""
        self.failures += 1
        if not self.counted:
            return
        self.metrics.count_invalid(REASON)
        if self.failures <= LOG_FIRST_REJECTIONS:
            self.log.error(what, error=fault_site(err), **where,
                           consequence=consequence + " (a bug: please report it)")
