"""Alerts appended to the tamper-evident audit trail (:mod:`watchdog.audit`).

``sinks: {audit: {path: /var/lib/watchdog/audit.jsonl, fsync: true}}``: every alert, as the
canonical document the other sinks publish (:func:`~watchdog.alerts.model.encode_alert`), is
appended to the hash-chained file and its head ``PATH.head`` is replaced; with ``fsync`` the
batch is on disk before it counts as delivered (and before its offset may be committed).
``watchdog verify-audit PATH`` checks the chain. With ``WATCHDOG_AUDIT_KEY`` (the credential
``audit-key``) the chain is keyed (HMAC-SHA256): ``verify-audit --key-file`` checks it.

An alert that an exception of the policy excused (contract 1.1) is not sent, but it is written
here (:meth:`AuditSink.note_excused`): the alert document with the labels ``excused_by``
(``exception``), ``exception_reason`` and ``exception_until``, so that an investigator sees what
was excused and why.

The writes (and fsyncs) run in a worker thread, off the event loop, one at a time
(:mod:`~watchdog.daemon.sinks.written`). A send that times out leaves its thread running: the
next send waits for it and skips the alerts it already appended, so a retry does not write an
alert twice. At start the sink remembers the alert ids of the trail's last 10,000 lines (read
once from the end, with the line the chain resumes from: :mod:`~watchdog.daemon.sinks.recent`):
an alert sent again after a restart (a stop mid-stream leaves the reorder buffer uncommitted,
and the alerts raised on arrival of those events come again with the same ``alert_id``) is
skipped, and counted as delivered (and in ``watchdog_sink_skipped_total``), rather than
written a second time: one line per alert. An alert that fails to append (disk full) raises
:class:`~watchdog.daemon.sinks.base.PartialDelivery` after the ones before it.

Opening the trail takes an exclusive lock and checks its last line against its head: a trail
that was truncated or rewritten, or that another process holds, stops the daemon at start
(exit 1, the reason in the log) rather than chaining new alerts onto a broken history. The
anomaly service (``detection.only: anomaly``) does not take that lock (``owner=False``): run
with the same configuration beside the rules service, it appends its alerts to the same chain
as a second writer, each append locked and chained onto the other's (:mod:`watchdog.audit.trail`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import msgspec

from watchdog.alerts.model import Alert, encode_alert
from watchdog.audit import AuditTrail
from watchdog.daemon.sinks.base import PartialDelivery
from watchdog.daemon.sinks.recent import REMEMBER, alert_key, excused_key
from watchdog.daemon.sinks.written import WrittenOnce

log = logging.getLogger(__name__)


class AuditSink:
    name = "audit"

    def __init__(self, path: str | Path, *, fsync: bool = True, timeout: float = 30.0,
                 key: bytes | None = None, owner: bool = True) -> None:
        self.path = Path(path)
        self.owner = owner  # holds the trail's owner lock (the rules service, or both in one)
        self.fsync = fsync
        self.key = key  # a keyed (HMAC) chain
        self.timeout = timeout
        self.trail: AuditTrail | None = None
        # ids of recent appends: skipped on a retry after a timeout, or after a restart
        self.written = WrittenOnce(REMEMBER)
        self._excused: list[tuple[str, bytes]] = []  # excused alerts waiting to be written
        self._excused_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.trail = await asyncio.to_thread(self._open)

    def _open(self) -> AuditTrail:
        """The trail, opened and checked (a torn last line cut), and the alert ids of the
        lines that check read remembered: the tail is read once."""
        trail = AuditTrail(self.path, fsync=self.fsync, key=self.key, owner=self.owner,
                           recall=REMEMBER)
        lines, trail.recalled = trail.recalled, []
        self.written.seed(k for k in map(alert_key, lines) if k is not None)
        return trail

    async def send(self, alerts: Sequence[Alert]) -> None:
        trail = self.trail
        if trail is None:
            raise ConnectionError(f"{self.path}: the audit trail is not open")
        docs = [(a.alert_id, encode_alert(a)) for a in alerts]
        # a timeout cancels the wait, not the thread: the next send waits for it
        await self.written.run(partial(self._append, trail, docs))

    def note_excused(self, alert: Alert, reason: str, until: str) -> None:
        """Write an alert that an exception excused, with its reason (from the event loop:
        written by a task of its own, after any send in progress)."""
        doc = msgspec.structs.replace(alert, labels={
            **alert.labels, "excused_by": "exception", "exception_reason": reason,
            "exception_until": until})
        self._excused.append((excused_key(alert.alert_id), encode_alert(doc)))
        if self._excused_task is None or self._excused_task.done():
            self._excused_task = asyncio.get_running_loop().create_task(self._write_excused())

    async def _write_excused(self) -> None:
        while self._excused and self.trail is not None:
            docs, self._excused = self._excused, []
            trail = self.trail
            if trail is None:
                return
            try:
                await self.written.run(partial(self._append, trail, docs))
            except Exception as err:  # the trail is broken: the sends will say so too
                log.error("audit: excused alerts not written: %s", type(err).__name__)
                return

    def _append(self, trail: AuditTrail, docs: list[tuple[str, bytes]]) -> None:
        """In the worker thread: each alert not appended yet, then remembered."""
        written, skipped = self.written, 0
        try:
            for i, (alert_id, doc) in enumerate(docs):
                if written.holds(alert_id):
                    skipped += 1  # appended by a send that timed out, or before a restart
                    continue
                try:
                    trail.append(doc)
                except Exception as err:
                    raise PartialDelivery(i, err) from err
                written.wrote((alert_id,))
        finally:
            written.skipped(skipped)

    def head(self) -> tuple[int, str] | None:
        """(last seq, its hash) of the trail: keep a copy elsewhere to detect truncation."""
        return None if self.trail is None else self.trail.head()

    async def close(self) -> None:
        task = self._excused_task
        if task is not None and not task.done():  # excused alerts noted before the shutdown
            await asyncio.wait({task}, timeout=self.timeout)
        trail, self.trail = self.trail, None
        if trail is None:
            return
        try:
            await self.written.settle()
        finally:
            trail.close()
