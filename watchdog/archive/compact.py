"""Compaction: the many small segments of a closed partition rewritten as one (or a few), and
those of an open day merged by size tier.

The daemon flushes every few seconds, so a live archive holds thousands of tiny segments per
day, and every query pays for each file (3 days of 2,000 accounts: 12,578 segments, a subject
report 31 times slower than over the same events written at once). A partition is *closed*
when its end is at least ``grace_seconds`` before the latest archived event (event time, as
retention judges it, never the wall clock); a closed partition of ``min_segments`` or more
live segments is read (each segment's SHA-256 checked first: a compaction must not launder a
changed segment into a freshly hashed one), its repeated ids dropped (the copy every query
keeps: :data:`.reader.ONCE`), sorted by (ts, id) and written again, as segments of
``segment_rows``. A partition of at most :data:`MEMORY_ROWS` rows is read whole; a larger one
(a day of millions of events) a group of segments at a time into DuckDB, which sorts it with
bounded memory, spilling to local disk (:mod:`.spill`): read whole, a day cost ~1.6 KB of
memory an event (2.0 GB at 1M events), and past ~5.5M events its documents overflowed one
Arrow string column, so such a day could not be compacted at all.

Crash-safe as a flush: the new names go to the pending marker before they are written, then
ONE manifest entry (``op: compact``: ``segments`` the new ones, ``replaces`` the old ones,
``rows`` and ``duplicates``) records the swap, and only then are the old files deleted. A run
first deletes what a crashed one left: replaced files still present, and the segments of a
pending marker that no entry records.

The default grace is an hour, not a day: a daily run then leaves only the current day in
small segments (a month of 2,000 accounts, subject report: 2.3 s with yesterday open too, 1.6 s
with today only). An event that arrives for a compacted day (a source catching up) is a new
small segment, merged again by the next run.

Records (directory, register, accounts) are partitioned by year: their partitions are
compacted whatever their age, the current year's too. They are small (a year of a 2,000-account
organisation's records: a few thousand rows), so rewriting the open year at every run costs
little, and otherwise a year of daemon flushes would stay in small files until the year ends.

The open day of access events and alerts is merged by size tier (an LSM tree's size-tiered
compaction): its segments of under ``segment_rows`` rows are grouped by rows within a factor of
:data:`TIER` (1-15 rows, 16-255, 256-4,095, ...), and a tier holding :data:`TIER` segments or more
is merged into one. Each merge moves its rows up a tier, so an event is rewritten a few times
at most (five tiers below 200,000 rows) and an open day holds at most ~15 segments per tier plus
the flushes since the last run. Without it, the open day stayed in one small segment per
flush until it closed: 4,285 by mid-day at 2,000 accounts, most of a month's subject-report
time. Run hourly (the shipped timers do), the month is 205 segments and the report 2.4 times
faster (docs/operations.md, *Compaction*). A merge keeps each id once within what it merges;
copies in the day's other segments are dropped when the day closes, and every query reads an
id once.

One compactor at a time: two compacting the same partition at once would each record a copy
(harmless to queries, counted by ``verify``). Live writers beside it are fine: a compaction
changes which files hold a partition's ids, not the ids (:class:`.writer.ArchiveWriter`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from watchdog.archive import checkpoint
from watchdog.archive import manifest as mf
from watchdog.archive.datasets import ALERTS, EVENTS, FORMAT, FORMAT_KEY, LEAN_FORMAT
from watchdog.archive.layout import SCHEMAS, segment_dir, subjects_of
from watchdog.archive.pending import clean_pending, done, mark
from watchdog.archive.segment import write_segment
from watchdog.archive.spill import Spill
from watchdog.archive.store import READERS, Store
from watchdog.archive.writer import (
    RECORDS,
    SEGMENT_ROWS,
)

_FORMAT, _LEAN = str(FORMAT).encode(), str(LEAN_FORMAT).encode()


@dataclass(frozen=True)
class Compacted:
    """One partition: what it held, what it holds now (``problem``: why it was left alone)."""

    dataset: str
    day: str
    segments_before: int
    segments_after: int = 0
    rows: int = 0  # rows written
    duplicates: int = 0  # stored rows whose id was stored already, not written again
    bytes_before: int = 0
    bytes_after: int = 0
    problem: str | None = None

    @property
    def partition(self) -> str:
        return segment_dir(self.dataset, self.day)


class _Damaged(Exception):
    """A segment that is absent or not the bytes its entry records: ``verify`` names it."""


def _end(seg: mf.Segment) -> datetime:
    start = datetime.fromisoformat(seg.day).replace(tzinfo=UTC)
    if seg.dataset in RECORDS:
        return start.replace(year=start.year + 1)
    return start + timedelta(days=1)


TIER = 16  # an open day's segments are merged by tier: rows within this factor, this many
_TIER_BITS = TIER.bit_length() - 1


def _tiers_due(segs: list[mf.Segment], segment_rows: int) -> list[mf.Segment]:
    """The segments of an open day to merge now: those of every tier (rows within a factor of
    :data:`TIER`; a full segment is in none) that holds :data:`TIER` segments or more."""
    tiers: dict[int, list[mf.Segment]] = defaultdict(list)
    for s in segs:
        if s.rows < segment_rows:
            tiers[(max(s.rows, 1).bit_length() - 1) // _TIER_BITS].append(s)
    return [s for tier in tiers.values() if len(tier) >= TIER for s in tier]


def due(c: mf.Contents, grace_seconds: float, min_segments: int,
        segment_rows: int = SEGMENT_ROWS, *, open_days: bool = True
        ) -> dict[tuple[str, str], list[mf.Segment]]:
    """The partitions to compact, with their live segments (see the module's doc): those
    whose segments compaction would make fewer (a day above ``segment_rows`` compacted into
    several full segments is not rewritten again at every run); with ``open_days``, also the
    segments of open days' full tiers."""
    parts: dict[tuple[str, str], list[mf.Segment]] = defaultdict(list)
    for s in c.segments.values():
        parts[(s.dataset, s.day)].append(s)
    stamps = [s.last for s in c.segments.values() if s.dataset in (EVENTS, ALERTS)]
    cutoff = (datetime.fromisoformat(max(stamps)) - timedelta(seconds=grace_seconds)
              if stamps else None)
    out = {}
    for key, segs in sorted(parts.items()):
        if key[0] in RECORDS or (cutoff is not None and _end(segs[0]) <= cutoff):
            if len(segs) >= min_segments and len(segs) > -(-sum(s.rows for s in segs)
                                                           // segment_rows):
                out[key] = sorted(segs, key=lambda s: s.path)
        elif open_days and (picked := _tiers_due(segs, segment_rows)):
            out[key] = sorted(picked, key=lambda s: s.path)
    return out


MEMORY_ROWS = 250_000  # rows of a partition compacted in memory (~0.4 GB), and read at once
GRACE = 3600.0  # seconds after its end before a day is compacted (event time)


def uncompacted(c: mf.Contents, closed_seconds: float = 2 * 86_400) -> dict[str, int]:
    """Per dataset (access events, alerts), the days that ended ``closed_seconds`` or more
    before the latest archived event and still hold several segments: with ``archive
    compact`` run hourly (or daily) at the default grace, none for long (the daemon's gauge).
    Open days are not counted: their merged tiers are several segments by design."""
    out: dict[str, int] = {}
    for ds, _day in due(c, closed_seconds, 2, open_days=False):
        if ds not in RECORDS:
            out[ds] = out.get(ds, 0) + 1
    return out


def compact(store: Store, writer: str | mf.ManifestWriter, *, grace_seconds: float = GRACE,
            segment_rows: int = SEGMENT_ROWS, min_segments: int = 2,
            open_days: bool = True, memory_rows: int = MEMORY_ROWS) -> list[Compacted]:
    """Compact every due partition (one manifest entry each, in ``writer``'s chain; open days
    by tier unless ``open_days`` is false); returns one summary per partition compacted or left
    alone because of a damaged segment. A partition of more than ``memory_rows`` rows is
    sorted on local disk (:mod:`.spill`), read ``memory_rows`` at a time."""
    if segment_rows <= 0 or min_segments < 1 or memory_rows < 1:
        raise ValueError("segment_rows and memory_rows must be positive and min_segments at "
                         "least 1")
    chain = writer if isinstance(writer, mf.ManifestWriter) else mf.ManifestWriter(store, writer)
    clean(store, chain)
    c = checkpoint.contents(store)
    out = []
    with ThreadPoolExecutor(READERS) as pool:  # S3: a GET per small segment
        for (dataset, day), segs in due(c, grace_seconds, min_segments, segment_rows,
                                        open_days=open_days).items():
            try:
                if sum(s.rows for s in segs) <= memory_rows:
                    done_ = _in_memory(store, chain, dataset, day, segs, segment_rows, pool)
                else:
                    done_ = _on_disk(store, chain, dataset, day, segs, segment_rows, pool,
                                     memory_rows)
            except _Damaged as err:
                done_ = Compacted(dataset, day, len(segs), problem=str(err))
            out.append(done_)
    if any(x.problem is None for x in out):
        # readers start from the compacted state, not from a checkpoint listing what it replaced
        checkpoint.write(store, checkpoint.contents(store), chain.writer)
    return out


def clean(store: Store, chain: mf.ManifestWriter) -> int:
    """Delete what a crashed compaction of this chain left: segments written but never
    recorded, and the segments its last entry replaced, if still present (each run deletes a
    partition's replaced segments before it compacts the next, so only the last entry can
    have left any). Returns how many files were deleted."""
    clean_pending(store, chain.writer, chain.seq)
    last = mf.read_entry(store, chain.writer, chain.seq) if chain.seq else None
    if last is None or last.get("op") != "compact":
        return 0
    left = [s["path"] for s in last.get("replaces", ()) if store.exists(s["path"])]
    for p in left:
        store.discard(p)
    return len(left)


def _segment(store: Store, dataset: str, seg: mf.Segment) -> pa.Table:
    """A segment's rows in its dataset's schema (format 1: a format-3 segment's subject ids
    read from its documents), once its bytes are checked against its entry."""
    schema = SCHEMAS[dataset]
    try:
        data = store.read_bytes(seg.path)
    except OSError:
        raise _Damaged(f"segment {seg.path} is missing (run archive verify)") from None
    if hashlib.sha256(data).hexdigest() != seg.sha256:
        raise _Damaged(f"segment {seg.path} is not what its entry records "
                       "(run archive verify)")
    # not pq.read_table: it builds a dataset per file (~1 ms; this: 0.3 ms a small segment)
    t = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    said = (t.schema.metadata or {}).get(FORMAT_KEY)
    if said is not None and said not in (_FORMAT, _LEAN):
        raise _Damaged(f"segment {seg.path}: format {said.decode('utf-8', 'replace')!r}, "
                       f"this watchdog compacts formats {FORMAT} and {LEAN_FORMAT} only")
    t = t.select(schema.names).cast(schema)
    if said == _LEAN:  # format 3: the subject ids stored now, the result is format 1
        try:
            ids = subjects_of(t.column("subject_ids"), t.column("raw"))
        except ValueError as err:
            raise _Damaged(f"segment {seg.path}: {err}") from None
        t = t.set_column(t.schema.get_field_index("subject_ids"), "subject_ids", ids)
    return t


def _once(table: pa.Table) -> pa.Table:
    """One row per id, the one every query keeps (first by time, then document), in (ts, id)
    order."""
    t = table.sort_by([("id", "ascending"), ("ts", "ascending"), ("raw", "ascending")])
    n = len(t)
    if n > 1:
        ids = t.column("id").combine_chunks()
        keep = np.ones(n, dtype=bool)
        keep[1:] = pc.not_equal(ids.slice(1), ids.slice(0, n - 1)).to_numpy(
            zero_copy_only=False)
        if not keep.all():
            t = t.filter(pa.array(keep))
    return t.sort_by([("ts", "ascending"), ("id", "ascending")])


def _in_memory(store: Store, chain: mf.ManifestWriter, dataset: str, day: str,
               segs: list[mf.Segment], segment_rows: int, pool: ThreadPoolExecutor
               ) -> Compacted:
    """The partition read whole (~1.6 KB of memory an event: a partition of at most
    :data:`MEMORY_ROWS`)."""
    table = pa.concat_tables(pool.map(lambda s: _segment(store, dataset, s), segs))
    rows_before = len(table)
    table = _once(table.replace_schema_metadata(SCHEMAS[dataset].metadata))
    pieces = (table.slice(i, segment_rows) for i in range(0, len(table), segment_rows))
    return _rewrite(store, chain, dataset, day, segs, rows_before, len(table), segment_rows,
                    pieces, pool)


def _on_disk(store: Store, chain: mf.ManifestWriter, dataset: str, day: str,
             segs: list[mf.Segment], segment_rows: int, pool: ThreadPoolExecutor,
             memory_rows: int) -> Compacted:
    """The partition's segments read (and checked) a group of at most ``memory_rows`` rows at
    a time into a :class:`.spill.Spill`, written back as segments of ``segment_rows``: memory
    bounded by those and DuckDB's limit, not by the partition."""
    with Spill(SCHEMAS[dataset]) as spill:
        group: list[mf.Segment] = []
        rows = 0
        for seg in [*segs, None]:
            if group and (seg is None or rows + seg.rows > memory_rows):
                for t in pool.map(lambda s: _segment(store, dataset, s), group):
                    spill.add(t)
                group, rows = [], 0
            if seg is not None:
                group.append(seg)
                rows += seg.rows
        return _rewrite(store, chain, dataset, day, segs, spill.rows, spill.distinct(),
                        segment_rows, spill.once(segment_rows), pool)


def _rewrite(store: Store, chain: mf.ManifestWriter, dataset: str, day: str,
             segs: list[mf.Segment], rows_before: int, rows: int, segment_rows: int,
             pieces: Iterable[pa.Table], pool: ThreadPoolExecutor) -> Compacted:
    """``pieces`` (``rows`` in all, each id once, in order, ``segment_rows`` each but the
    last) written as the partition's segments, recorded as replacing ``segs`` (``rows_before``
    rows), which are then deleted."""
    seq = chain.seq + 1
    paths = [f"{segment_dir(dataset, day)}/{chain.writer}-{seq:012d}-{i:04d}.parquet"
             for i in range(-(-rows // segment_rows))]
    mark(store, chain.writer, seq, paths)
    new = [write_segment(store, path, dataset, day, piece)
           for path, piece in zip(paths, pieces, strict=True)]
    if sum(s.rows for s in new) != rows:  # not recorded: the marker names them, the next run
        raise RuntimeError(f"{segment_dir(dataset, day)}: {sum(s.rows for s in new)} rows "
                           f"written, {rows} expected")
    duplicates = rows_before - rows
    chain.append("compact", dataset=dataset, day=day, segments=[s.as_dict() for s in new],
                 replaces=[s.as_dict() for s in segs], rows=rows_before,
                 duplicates=duplicates)
    # recorded: the old files are no longer read by anyone who reads the manifest
    list(pool.map(lambda s: store.discard(s.path), segs))
    done(store, chain.writer)
    return Compacted(dataset, day, len(segs), len(new), rows, duplicates,
                     sum(s.bytes for s in segs), sum(s.bytes for s in new))
