"""Segments: buffered documents of one dataset and day, written as one Parquet file each
(records: one year, see :func:`partition_day`).

:class:`ArchiveWriter` is synchronous (the daemon runs :meth:`flush` in a thread). A document is
added with its id and event time; one whose id the day already holds, in a finished segment or
in the buffer, is skipped (a Kafka redelivery after a crash, a file archived twice). Each day's
ids are loaded from its segments the first time the day is touched and kept for the
``days_cached`` most recently touched days.

Several writers (daemon instances of one consumer group): after a rebalance, an instance
re-reads what another archived but had not committed. So before each flush the writer looks at
the other writers' manifest heads, reads their new entries, adds the ids of their new segments
to the days it holds, and drops those ids from its buffers. What this cannot see is another
writer's flush that runs at the same moment; such copies are counted by ``archive verify`` and
every query reads each id once (:mod:`watchdog.archive.reader`).

A flush writes every buffered day as a segment, then one manifest entry for all of them: only
then are the documents archived (the daemon commits their offsets after that). Before writing,
the names about to be written go to ``_manifest/<writer>.pending``: a crash between the segments
and their entry leaves files that no entry records, and the next writer with that id deletes
them (their documents were not acknowledged, so they come again).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime

import numpy as np

from watchdog.archive import checkpoint
from watchdog.archive import manifest as mf
from watchdog.archive.buffer import Buffer, Chunk, Item
from watchdog.archive.day_ids import segment_ids
from watchdog.archive.layout import (
    ACCOUNTS,
    COLUMNS,
    DIRECTORY,
    EVENTS,
    SUBJECTS,
    day_of_epoch,
    segment_dir,
    to_table,
)
from watchdog.archive.pending import clean_pending, mark
from watchdog.archive.segment import encode_segment, write_segment
from watchdog.archive.store import Store

log = logging.getLogger(__name__)

RECORDS = (DIRECTORY, SUBJECTS, ACCOUNTS)
SEGMENT_ROWS = 200_000  # rows of one day buffered before a flush is due
CONTENTS_SECONDS = 300.0
_DAY = 86_400


def warm_up() -> None:
    """Pay pyarrow's first-use costs (compute kernels registered, the JSON reader, the Parquet
    writer: ~0.1 s of CPU) at start, not in the first flush of a stream."""
    for dataset, lean in ((EVENTS, False), (EVENTS, True), (DIRECTORY, False)):
        buf = Buffer()
        buf.add_run(Chunk.of([("x", 0.0, b'{"user_id":"u","status":"active"}', ("s",))]), 0, 1)
        encode_segment(to_table(dataset, buf.id_column(), buf.time_column(), buf.docs(),
                                None if lean else buf.subject_column(),
                                raw=buf.raw_column(), lean=lean))


def partition_day(dataset: str, t: float) -> int:
    """The partition of a document (days since the epoch): the day of its event time; for
    records, the first day of its year. Records are dated when they took effect, years back
    for a long-serving employee, and are never dropped: by day (or month: a daemon's first
    flush of a directory with 10 years of history wrote 148 files, 0.14 s of CPU) they would
    make a tiny file per day of an organisation's history."""
    day = int(t // _DAY)
    if dataset in RECORDS:
        d = datetime.fromtimestamp(day * _DAY, UTC)
        day = int(datetime(d.year, 1, 1, tzinfo=UTC).timestamp() // _DAY)
    return day


def _day_number(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() // _DAY)


class ArchiveWriter:
    """``store_subjects``: access events' ``subject_ids`` stored (format 1); False: format 3,
    left to the readers and to compaction (a daemon's default: 0.35-0.5 us an event less)."""

    def __init__(self, store: Store, writer: str, *, segment_rows: int = SEGMENT_ROWS,
                 days_cached: int = 8, checkpoint_every: int = checkpoint.EVERY,
                 store_subjects: bool = True) -> None:
        self.store = store
        self.store_subjects = store_subjects
        self.manifest = mf.ManifestWriter(store, writer)
        self.writer = writer
        self.segment_rows = segment_rows
        self.days_cached = days_cached
        self._buf: dict[tuple[str, int], Buffer] = {}
        self._seen: OrderedDict[tuple[str, int], set[str]] = OrderedDict()
        self._days: dict[int, str] = {}
        self.pending = 0  # documents buffered
        # what the archive holds, read once (every chain), then kept up to date with this
        # writer's own segments; re-read after CONTENTS_SECONDS for other writers' segments
        self._contents = checkpoint.contents(store)
        self._contents_at = time.monotonic()
        # the other writers' entries read so far (their chains' tips)
        self._others = {c.writer: c.tip[0] for c in self._contents.chains
                        if c.writer != writer}
        self._since_checkpoint = checkpoint.since(self._contents)
        self.checkpoint_every = checkpoint_every
        self.duplicates = 0  # documents skipped: their id was archived already
        self._clean_pending()

    @property
    def contents(self) -> mf.Contents:
        """What the archive holds as this writer last looked: its own segments, the other
        writers' (their compactions and drops too) up to its last flush."""
        return self._contents

    # -- in -----------------------------------------------------------------------------------
    def add(self, dataset: str, doc_id: str, t: float, raw: bytes,
            subjects: tuple[str, ...] = ()) -> bool:
        """Buffer a document; False (and nothing buffered) if its day already has ``doc_id``."""
        key = (dataset, partition_day(dataset, t))
        seen = self._seen.get(key)
        if seen is None:
            seen = self._load_day(key)
        if doc_id in seen:
            self.duplicates += 1
            return False
        seen.add(doc_id)
        buf = self._buf.get(key)
        if buf is None:
            buf = self._buf[key] = Buffer()
        buf.add(doc_id, t, raw, subjects)
        self.pending += 1
        return True

    def add_many(self, dataset: str, items: list[Item]) -> int:
        """:meth:`add` for a batch of (id, event time, raw, subject ids); returns how many
        were new."""
        if dataset in RECORDS:
            return sum(self.add(dataset, *item) for item in items)
        return self.add_chunk(dataset, Chunk.of(items)) if items else 0

    def add_chunk(self, dataset: str, chunk: Chunk) -> int:
        """The daemon's path, in bulk (day-partitioned datasets): the batch is cut into runs of
        one day (numpy), and a run whose ids are all new and distinct (the rule: a redelivery
        is the exception) joins the day's buffer whole, with C-level set and list operations;
        a run with a duplicate is filtered one document at a time. Returns how many were new."""
        if chunk.subjects is None and self.store_subjects:
            raise ValueError("a chunk without subject ids, for a writer that stores them")
        ids = chunk.ids
        days = (chunk.time_array() // _DAY).astype(np.int64)
        cuts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist(), len(ids)]
        added = 0
        for a, b in itertools.pairwise(cuts):
            key = (dataset, int(days[a]))
            seen = self._seen.get(key)
            if seen is None:
                seen = self._load_day(key)
            run_ids = ids[a:b]
            buf = self._buf.get(key)
            if buf is None:
                buf = self._buf[key] = Buffer()
            if seen.isdisjoint(run_ids):
                before = len(seen)
                seen.update(run_ids)
                if len(seen) - before == b - a:  # no id twice within the run either
                    buf.add_run(chunk, a, b)
                    added += b - a
                    continue
                seen.difference_update(run_ids)  # back out, then one at a time
            for i in range(a, b):
                doc_id = ids[i]
                if doc_id in seen:
                    continue
                seen.add(doc_id)
                buf.add(doc_id, chunk.times[i], chunk.doc(i), chunk.subject(i))
                added += 1
        self.pending += added
        self.duplicates += len(ids) - added
        for key in [k for k, buf in self._buf.items() if not len(buf)]:
            del self._buf[key]  # a day whose every document was a duplicate
        return added

    def full(self) -> bool:
        return any(len(b) >= self.segment_rows for b in self._buf.values())

    # -- out -------------------------------------------------------------------------------------
    def flush(self) -> list[mf.Segment]:
        """Write every buffer as a segment and record them; raise (keeping them) on failure."""
        if not self._buf:
            return []
        self._catch_up()
        if not self._buf:
            return []
        seq = self.manifest.seq + 1
        planned: list[tuple[tuple[str, int], str]] = []
        for i, key in enumerate(sorted(self._buf)):
            dataset, day = key[0], self._day(key[1])
            planned.append((key, f"{segment_dir(dataset, day)}/{self.writer}-{seq:012d}-"
                                 f"{i:04d}.parquet"))
        mark(self.store, self.writer, seq, [p for _k, p in planned])
        segments = []
        for key, path in planned:
            buf = self._buf[key]
            lean = key[0] == EVENTS and not self.store_subjects
            table = to_table(key[0], buf.id_column(), buf.time_column(),
                             buf.docs() if COLUMNS[key[0]] else [],
                             None if lean else buf.subject_column(), raw=buf.raw_column(),
                             lean=lean)
            segments.append(write_segment(self.store, path, key[0], self._day(key[1]), table))
        self.manifest.append("segments", segments=[s.as_dict() for s in segments])
        for s in segments:
            self._contents.segments[s.path] = s
        self._buf.clear()
        self.pending = 0
        self._evict()
        self._since_checkpoint += 1
        if self._since_checkpoint >= self.checkpoint_every:
            self._checkpoint()
        return segments

    def _checkpoint(self) -> None:
        """Record what the archive holds, so that the next opening reads the entries written
        from now on only (the segments are recorded already: a failure here loses nothing)."""
        try:
            c = checkpoint.contents(self.store)
            path = checkpoint.write(self.store, c, self.writer)
        except Exception as err:  # the next flush tries again
            log.warning("archive checkpoint not written: %s", str(err)[:200])
            return
        # not the other writers' tips: their entries since are read by the next _catch_up,
        # which also drops their ids from the days cached here
        self._contents, self._contents_at = c, time.monotonic()
        self._since_checkpoint = 0
        log.info("archive checkpoint %s (%d segments)", path, len(c.segments))

    # -- internals -------------------------------------------------------------------------------
    def _day(self, n: int) -> str:
        d = self._days.get(n)
        if d is None:
            d = self._days[n] = day_of_epoch(n * _DAY)
        return d

    def _catch_up(self) -> None:
        """Other writers' segments since the last look: their ids join the cached days' sets
        and leave this writer's buffers (they are archived already). A compaction changes which
        files hold a day's ids, not the ids: only the contents follow it."""
        stale: set[tuple[str, int]] = set()
        new: dict[tuple[str, int], list[mf.Segment]] = {}
        for other, head in mf.heads(self.store).items():
            if other == self.writer:
                continue
            for seq in range(self._others.get(other, 0) + 1, head + 1):
                entry = mf.read_entry(self.store, other, seq)
                if entry is None:
                    break  # not yet visible, or removed (``verify`` names it): next time
                self._others[other] = seq
                mf.apply(self._contents, [entry])
                if entry.get("op") != "segments":
                    continue
                for s in entry.get("segments", ()):
                    seg = mf.Segment(**s)
                    key = (seg.dataset, _day_number(seg.day))
                    if key in self._seen:  # else loaded whole when the day is first touched
                        new.setdefault(key, []).append(seg)
        for key, segs in new.items():  # each day's new segments read at once (S3: in parallel)
            ids, missing = segment_ids(self.store, segs)
            self._merge(key, self._seen[key], ids)
            if missing:  # compacted away since (or damaged): the day re-read below
                stale.add(key)
        if stale:
            self._refresh()
            for key in stale:
                self._merge(key, self._seen[key], self._day_ids(key))

    def _merge(self, key: tuple[str, int], seen: set[str], ids: set[str]) -> None:
        seen.update(ids)
        buf = self._buf.get(key)
        if buf is not None and not ids.isdisjoint(buf.ids):
            self._drop_from(key, buf, ids)

    def _drop_from(self, key: tuple[str, int], buf: Buffer, ids: set[str]) -> None:
        kept = self._buf[key] = buf.without(ids)
        dropped = len(buf) - len(kept)
        if not len(kept):
            del self._buf[key]
        self.pending -= dropped
        self.duplicates += dropped
        log.info("archive: %d document(s) of %s %s archived meanwhile by another writer, "
                 "not written again", dropped, key[0], self._day(key[1]))

    def _refresh(self) -> None:
        """Re-read every chain. ``_others`` is left as it is: the entries since are read by
        the next :meth:`_catch_up`, which adds their ids to the cached days (moving the tips
        here would skip them)."""
        self._contents = checkpoint.contents(self.store)
        self._contents_at = time.monotonic()

    def _day_ids(self, key: tuple[str, int]) -> set[str]:
        """Every id the contents record for the day. A segment that cannot be read was most
        likely replaced by a compaction since the contents were read: they are read again
        once, and the day's segments retried, before giving up on a segment."""
        dataset, day = key[0], self._day(key[1])
        ids: set[str] = set()
        done: set[str] = set()
        for attempt in range(2):
            segs = [s for s in self._contents.of(dataset)
                    if s.day == day and s.path not in done]
            got, missing = segment_ids(self.store, segs)
            ids.update(got)
            done.update(s.path for s in segs)
            done.difference_update(missing)
            if not missing:
                break
            if attempt == 0:
                self._refresh()
            else:
                # removed or damaged (``verify`` names it): archive rather than refuse
                for path in missing:
                    log.warning("archive segment %s unreadable, its ids are not "
                                "deduplicated against", path)
        return ids

    def _load_day(self, key: tuple[str, int]) -> set[str]:
        if time.monotonic() - self._contents_at > CONTENTS_SECONDS:
            self._refresh()
        ids = self._day_ids(key)
        # evicted after a flush only: a day evicted while its buffer fills would lose the ids
        # buffered so far
        self._seen[key] = ids
        return ids

    def _evict(self) -> None:
        seen = self._seen
        while len(seen) > self.days_cached:
            for key in seen:
                if key not in self._buf:
                    del seen[key]
                    break
            else:
                return

    def _clean_pending(self) -> None:
        clean_pending(self.store, self.writer, self.manifest.seq)

