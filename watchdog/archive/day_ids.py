"""The ids a day's segments hold: what a writer deduplicates against when it first touches a
day (a daemon's start, a late event for an older day, a redelivery).

A day the daemon wrote is thousands of small segments (one per flush: 8,640 a day at
``flush_seconds: 10``), read when a daemon restarts late in the day. One by one through a
dataset reader that cost ~1 ms each locally (``pq.read_table`` builds a dataset per file) and a
round trip each on S3 (~7 ms against moto: a minute before the first flush). Small segments
are now read whole, several at a time on S3 (:meth:`.store.Store.read_many`), and parsed from
memory (~0.3 ms); a large one (a compacted day) is read by its ``id`` column only.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from watchdog.archive import manifest as mf
from watchdog.archive.store import Store

WHOLE_BYTES = 1 << 20  # a segment up to this size is read whole: one request, no footer seek


def _ids(f: pa.NativeFile | pa.BufferReader) -> set[str]:
    table = pq.ParquetFile(f).read(columns=["id"], use_threads=False)
    return set(table.column("id").to_pylist())


def segment_ids(store: Store, segments: list[mf.Segment]) -> tuple[set[str], list[str]]:
    """The ids the segments hold, and the paths of those that could not be read (removed,
    most likely by a compaction since the caller's contents were read; or damaged)."""
    ids: set[str] = set()
    missing: list[str] = []
    small = [s for s in segments if s.bytes <= WHOLE_BYTES]
    for seg, data in zip(small, store.read_many([s.path for s in small]), strict=True):
        try:
            if data is None:
                raise OSError
            ids.update(_ids(pa.BufferReader(data)))
        except (OSError, pa.ArrowInvalid):
            missing.append(seg.path)
    for seg in segments:
        if seg.bytes > WHOLE_BYTES:
            try:
                with store.fs.open_input_file(store.path(seg.path)) as f:
                    ids.update(_ids(f))
            except (OSError, pa.ArrowInvalid):
                missing.append(seg.path)
    return ids, missing
