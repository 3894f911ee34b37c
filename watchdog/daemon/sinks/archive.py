"""The daemon's archive: every access event, state record and alert, written as Parquet.

The pipeline hands each consumed batch's valid events over (:meth:`DaemonArchive.put_events`,
one call per batch), joined at once into one piece (:class:`~watchdog.archive.buffer.Chunk`:
while the documents are in the CPU's cache; the segment's column is made of such pieces); the
state reader hands over its records, the delivery its alerts. Each batch holds back its
partition's commit (the offset of its first archived record stays in flight) until a flush
has written the segments *and* their manifest entry: offsets are committed only once the
archive has the events. A crash before that re-reads them, and the writer's per-day ids drop
what was archived already (no duplicates).

A flush runs in a thread every ``flush_seconds``, or sooner when ``segment_rows`` documents
wait or every source is caught up (:meth:`DaemonArchive.quiet`); one that fails (the bucket
unreachable) is retried with backoff, counted in ``watchdog_archive_write_errors_total``, and
its documents are kept; above ``max_pending`` the sources pause. Retention drops whole days
at most once an hour, after a flush.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import Counter
from datetime import date
from typing import Any

from watchdog.alerts.model import Alert, encode_alert
from watchdog.archive import checkpoint
from watchdog.archive import manifest as mf
from watchdog.archive.buffer import Chunk
from watchdog.archive.compact import uncompacted
from watchdog.archive.documents import alert_key, record_key
from watchdog.archive.layout import ACCOUNTS, ALERTS, DATASETS, DIRECTORY, EVENTS, SUBJECTS
from watchdog.archive.retention import prune
from watchdog.archive.store import ACCESS_KEY_ENV, SECRET_KEY_ENV, Store, open_store
from watchdog.archive.writer import ArchiveWriter, warm_up
from watchdog.daemon.config import Archive, Topics
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook

RETENTION_EVERY = 3600.0  # seconds between retention passes
DAY_ROWS_DAYS = 35  # days exported in watchdog_archive_day_rows
SEGMENTS_EVERY = 60.0  # seconds between counts of the live segments (a month uncompacted: 125k)
READY_SECONDS = 10.0  # the longest the start waits for the archive (see DaemonArchive.ready)

Hold = tuple[PartitionBook, int]


class _NotOpened(Exception):
    """The store could not be opened: nothing was handed to a writer."""


class DaemonArchive:
    name = "archive"

    def __init__(self, cfg: Archive, topics: Topics, metrics: Metrics, log: Any, *,
                 retention_days: int | None = None) -> None:
        self.cfg = cfg
        self.writer_id = mf.check_writer(cfg.writer or socket.gethostname().split(".")[0])
        self.metrics = metrics
        self.log = log.bind(sink="archive")
        self.retention_days = cfg.retention_days or retention_days
        self._datasets = {topics.directory: DIRECTORY, topics.subjects: SUBJECTS,
                          topics.accounts: ACCOUNTS}
        self._events: list[Chunk] = []
        self._staged = 0  # documents in self._events
        self._docs: list[tuple[str, str, float, bytes]] = []
        self._holds: list[Hold] = []
        self._first_at = 0.0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._now = False  # flush at once (shutdown)
        self._opened = asyncio.Event()  # the first attempt to open the store is over
        self._attempts = 0  # flushes tried (written or failed)
        self._tried = asyncio.Event()  # set after each flush attempt
        self.store: Store | None = None
        self.writer: ArchiveWriter | None = None
        self.failing = False
        self._pruned_at = 0.0
        self._day_rows: Counter[tuple[str, str]] = Counter()
        self._segments: tuple[Counter[str], dict[str, int]] | None = None  # per dataset
        self._segments_at = -SEGMENTS_EVERY
        self._labelled: set[tuple[str, str]] = set()
        self._alerts_put = self._alerts_written = 0  # alerts handed over / in a segment

    # -- in (event loop, hot) ---------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._staged + len(self._docs) + (self.writer.pending if self.writer else 0)

    @property
    def alerts_pending(self) -> int:
        """Alerts handed over and not yet in a written segment (a flush writes every one handed
        over before it started: the writer keeps what a failed flush had)."""
        return self._alerts_put - self._alerts_written

    def _hold(self, book: PartitionBook | None, offset: int) -> None:
        if book is not None and offset >= 0:
            book.add_inflight(offset)
            self._holds.append((book, offset))
        if self._idle.is_set():
            self._idle.clear()
            self._first_at = time.monotonic()
            self._wake.set()

    @property
    def keeps_subjects(self) -> bool:
        """Whether :meth:`put_events` wants the subject ids (``store_subject_ids``: format 1);
        the pipeline collects them per event only then."""
        return self.cfg.store_subject_ids

    def put_events(self, ids: list[str], times: list[float], raws: list[bytes],
                   subjects: list[tuple[str, ...]] | None, book: PartitionBook | None,
                   offset: int) -> None:
        """A batch's event ids, event times, raw documents and subject ids (as columns; None
        unless :attr:`keeps_subjects`); ``offset``: its first record's."""
        self._events.append(Chunk.of_columns(ids, times, raws, subjects))
        self._staged += len(ids)
        self._hold(book, offset)
        if self._staged >= self.cfg.segment_rows:
            self._wake.set()

    def put_alert(self, alert: Alert, book: PartitionBook | None, offset: int) -> None:
        raw = encode_alert(alert)
        key = alert_key(raw)
        if isinstance(key, str):  # cannot happen for an Alert; never drop silently
            self.log.warning("archive_alert_unreadable", detail=key)
            return
        self._docs.append((ALERTS, key[0], key[1], raw))
        self._alerts_put += 1
        self._hold(book, offset)

    def put_record(self, topic: str, doc: Any, raw: bytes) -> None:
        dataset = self._datasets.get(topic)
        if dataset is None:
            return
        rid, t, _ = record_key(doc, raw)
        self._docs.append((dataset, rid, t, raw))
        self._hold(None, -1)

    # -- the writer task -----------------------------------------------------------------------
    async def run(self) -> None:
        try:  # at start: the store's state read and pyarrow's first-use costs paid before
            # the stream (a store that fails now is tried again at the first flush)
            await asyncio.to_thread(self._open)
        except Exception as err:
            self.metrics.archive_errors.inc()
            self.log.warning("archive_open_failed", error=type(err).__name__,
                             detail=str(err)[:200])
        finally:
            self._opened.set()
        backoff = 0.5
        while True:
            if self._idle.is_set():
                self._wake.clear()
                await self._wake.wait()
                continue
            due = self._first_at + self.cfg.flush_seconds
            if not self._now and self._staged < self.cfg.segment_rows:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(),
                                           timeout=max(0.0, due - time.monotonic()))
                    continue  # woken: re-check (more rows, or a drain)
                except TimeoutError:
                    pass
            ok = await self._flush()
            self._attempts += 1
            self._tried.set()
            self._tried.clear()  # the waiters were woken; the next attempt sets it again
            if ok:
                backoff = 0.5
            else:
                await asyncio.sleep(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, 30.0)

    async def _flush(self) -> bool:
        events, docs, holds = self._events, self._docs, self._holds
        self._events, self._docs, self._holds = [], [], []
        staged, self._staged = self._staged, 0
        alerts_put = self._alerts_put
        self._first_at = time.monotonic()
        try:
            written = await asyncio.to_thread(self._write, events, docs)
        except Exception as err:  # the store failed: keep everything, retry
            if isinstance(err, _NotOpened):
                # nothing was added: the staged documents wait for the next attempt
                self._events[:0] = events
                self._docs[:0] = docs
                self._staged += staged
                err = err.__cause__ if isinstance(err.__cause__, Exception) else err
            self.metrics.archive_errors.inc()
            if not self.failing:
                self.log.warning("archive_flush_failed", error=type(err).__name__,
                                 detail=str(err)[:200], pending=self.pending)
            self.failing = True
            self._holds = holds + self._holds
            return False
        self._alerts_written = alerts_put
        if self.failing:
            self.failing = False
            self.log.info("archive_recovered")
        for book, offset in holds:
            book.done_inflight(offset)
        self._account(written)
        if not (self._events or self._docs):
            self._idle.set()
            self._now = False
        return True

    def _write(self, events: list[Chunk], docs: list[tuple[str, str, float, bytes]]
               ) -> list[mf.Segment]:
        """In a thread: add the staged documents to the writer and flush it."""
        if self.writer is None:
            try:
                self._open()
            except Exception as err:
                raise _NotOpened from err
        w = self.writer
        assert w is not None
        for chunk in events:
            w.add_chunk(EVENTS, chunk)
        for ds, did, t, raw in docs:
            w.add(ds, did, t, raw)
        written = w.flush()
        if self._segments is None or time.monotonic() - self._segments_at >= SEGMENTS_EVERY:
            # here, in the flush's thread: the writer's contents change only in its flushes
            self._segments_at = time.monotonic()
            c = w.contents
            self._segments = (Counter(s.dataset for s in c.segments.values()), uncompacted(c))
        else:  # in between, this writer's own segments (the others' at the next count)
            self._segments[0].update(s.dataset for s in written)
        if self.retention_days and time.monotonic() - self._pruned_at >= RETENTION_EVERY:
            self._pruned_at = time.monotonic()
            assert self.store is not None
            dropped = prune(self.store, w.manifest, self.retention_days)
            if dropped:
                self.log.info("archive_retention", dropped=dropped)
                self._day_rows = self._count(checkpoint.contents(self.store))
        return written

    def _open(self) -> None:
        secrets = {ACCESS_KEY_ENV: self.cfg.s3_access_key_id or "",
                   SECRET_KEY_ENV: self.cfg.s3_secret_access_key or ""}
        store = open_store(self.cfg.location, {k: v for k, v in secrets.items() if v},
                           create=True)
        self.writer = ArchiveWriter(store, self.writer_id, segment_rows=self.cfg.segment_rows,
                                    checkpoint_every=self.cfg.checkpoint_every,
                                    store_subjects=self.cfg.store_subject_ids)
        self.store = store
        self._day_rows = self._count(checkpoint.contents(store))
        warm_up()
        self.log.info("archive_opened", location=store.uri, writer=self.writer_id,
                      manifest_entry=self.writer.manifest.seq)

    @staticmethod
    def _count(c: mf.Contents) -> Counter[tuple[str, str]]:
        rows: Counter[tuple[str, str]] = Counter()
        for s in c.segments.values():
            rows[(s.dataset, s.day)] += s.rows
        return rows

    def _account(self, written: list[mf.Segment]) -> None:
        m = self.metrics
        for s in written:
            m.archive_rows.labels(s.dataset).inc(s.rows)
            self._day_rows[(s.dataset, s.day)] += s.rows
        m.archive_flushed.set(time.time())
        m.archive_pending.set(self.pending)
        if self._segments is not None:
            counts, late = self._segments
            for ds in DATASETS:
                m.archive_segments.labels(ds).set(counts[ds])
                m.archive_uncompacted.labels(ds).set(late.get(ds, 0))
        if written or not self._labelled:
            self._export_days()

    def _export_days(self) -> None:
        """Completeness: days held, days missing in between, rows of the latest days."""
        m = self.metrics
        keep: set[tuple[str, str]] = set()
        for ds in DATASETS:
            days = sorted(d for (d_s, d) in self._day_rows if d_s == ds)
            m.archive_days.labels(ds).set(len(days))
            if not days:
                m.archive_missing.labels(ds).set(0)
                continue
            first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
            m.archive_missing.labels(ds).set((last - first).days + 1 - len(days))
            for d in days[-DAY_ROWS_DAYS:]:
                m.archive_day_rows.labels(ds, d).set(self._day_rows[(ds, d)])
                keep.add((ds, d))
        for ds, d in self._labelled - keep:  # bounded series: older days leave the gauge
            m.archive_day_rows.remove(ds, d)
        self._labelled = keep

    async def ready(self) -> None:
        """Before the sources start: wait for the store to be opened (pyarrow's first-use costs
        paid) and write what is staged, the state records read at start, so that they are
        archived before the stream, not in its first flush beside the event loop. Bounded by
        ``READY_SECONDS``, and returns at once when the store could not be opened: a bucket that is
        down does not hold the daemon's start (the records wait, retried, as before)."""
        try:
            async with asyncio.timeout(READY_SECONDS):
                await self._opened.wait()
                if self.writer is None or self._idle.is_set():
                    return
                self._now = True
                self._wake.set()
                # one attempt: written, or failed (then retried in the background)
                attempts = self._attempts
                while self._attempts == attempts:
                    await self._tried.wait()
        except TimeoutError:
            self.log.info("archive_not_ready", pending=self.pending, waited=READY_SECONDS)

    def quiet(self) -> None:
        """Every source is caught up: flush what is staged now (from the event loop)."""
        if not self._idle.is_set():
            self._now = True
            self._wake.set()

    # -- shutdown ------------------------------------------------------------------------------
    async def drain(self) -> bool:
        """Flush what is staged now (shutdown); True once the archive has everything."""
        if self._idle.is_set():
            return True
        self._now = True
        self._wake.set()
        await self._idle.wait()
        return True

    async def close(self) -> None:
        return None
