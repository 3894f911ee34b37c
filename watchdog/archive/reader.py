"""DuckDB over the archive: each dataset a view of its live segments (those the manifest
records, never a file merely lying in the prefix), pruned to a time range by the manifest's
first/last event time per segment. DuckDB reads the pyarrow datasets directly (no network
extension: the same code reads a directory and S3).

Each id once, whatever is stored: the writers skip an id their day already holds, but two
daemon instances that flush the same redelivered event at the same moment (a rebalance while
both were writing) can each store it. So every view here keeps one row per id (``<dataset>``),
the first by time then document; ``<dataset>_stored`` is what the files hold, copies included.
:data:`ONCE` is that rule, for a query that filters first (same result: copies of an id are
the same delivered document).

Segments of formats 1 and 3 only (:data:`.datasets.READ_FORMATS`; 3 leaves an event's
``subject_ids`` to be read from its document, :data:`.datasets.EVENT_VIEW`): a segment whose
Parquet metadata says another format is refused by its name before anything is read
(:class:`SegmentFormatError`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from watchdog.archive import checkpoint
from watchdog.archive import manifest as mf
from watchdog.archive.datasets import (
    DATASETS,
    EVENT_VIEW,
    EVENTS,
    FORMAT_KEY,
    READ_FORMATS,
    empty_select,
)
from watchdog.archive.manifest import stamp
from watchdog.archive.store import Store

# one row per id: appended to a query over a ``*_stored`` view (before its ORDER BY)
ONCE = "QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts, raw) = 1"
_FORMATS = tuple(str(f).encode() for f in READ_FORMATS)
_SAID = " and ".join(str(f) for f in READ_FORMATS)


def parse_time(text: str) -> datetime:
    """``--from``/``--to``: RFC 3339 with an offset, or a date (midnight UTC)."""
    value = text.strip()
    if len(value) == 10:
        value += "T00:00:00Z"
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r}: not an RFC 3339 time or a date (YYYY-MM-DD)") from None
    if t.tzinfo is None:
        raise ValueError(f"{text!r}: give an offset (e.g. Z)")
    return t


class SegmentFormatError(ValueError):
    """A segment of a format this watchdog does not read (a newer watchdog's): refused by its
    name, where read as format 1 it would be misread or fail deep in DuckDB, naming none.
    Segments without the key predate it: format 1."""

    def __init__(self, path: str, value: bytes) -> None:
        said = value.decode("utf-8", "replace")[:20]
        super().__init__(f"segment {path}: format {said!r}, this watchdog reads "
                         f"formats {_SAID} only (written by a newer watchdog?)")


def _check_fragments(data: Any, store: Store) -> None:
    """The segments' formats over S3: each one's footer, read in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    def said(fragment: Any) -> tuple[str, bytes | None]:
        meta = fragment.physical_schema.metadata or {}
        return fragment.path, meta.get(FORMAT_KEY)

    with ThreadPoolExecutor(8) as pool:
        for path, value in pool.map(said, data.get_fragments()):
            if value is not None and value not in _FORMATS:
                raise SegmentFormatError(store.rel(path), value)


class ArchiveQuery:
    """``q.sql(...)`` over the views ``events``, ``directory``, ``subjects``, ``accounts``,
    ``alerts``, each id once (``ranged`` datasets restricted to segments that may hold
    [first, last)); ``events_all``: the events as stored, with their query columns."""

    def __init__(self, store: Store, *, first: datetime | None = None,
                 last: datetime | None = None, ranged: tuple[str, ...] = ("events",),
                 contents: mf.Contents | None = None) -> None:
        self.store = store
        self.contents = contents or checkpoint.contents(store)
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        try:
            self._views(store, stamp(first) if first else None,
                        stamp(last) if last else None, ranged)
        except BaseException:
            self.con.close()
            raise

    def _views(self, store: Store, lo: str | None, hi: str | None,
               ranged: tuple[str, ...]) -> None:
        for ds in DATASETS:
            segs = (self.contents.of(ds, lo, hi) if ds in ranged
                    else self.contents.of(ds))
            name = f"{ds}_stored"
            if segs and store.is_local:
                # DuckDB's own Parquet reader: parallel, and several times faster than a
                # pyarrow dataset (which S3 needs: DuckDB's httpfs is a download)
                files = ", ".join("'" + store.path(s.path).replace("'", "''") + "'"
                                  for s in segs)
                # every footer read twice (here, then by the query): cached the second time
                self.con.execute("SET parquet_metadata_cache = true")
                bad = self.con.execute(
                    "SELECT file_name, value FROM parquet_kv_metadata("  # noqa: S608
                    f"[{files}]) WHERE key = $key AND NOT list_contains($formats, value) "
                    "LIMIT 1", {"key": FORMAT_KEY, "formats": list(_FORMATS)}).fetchall()
                if bad:
                    raise SegmentFormatError(store.rel(str(bad[0][0])), bytes(bad[0][1]))
                self.con.execute(f"CREATE TEMP VIEW {name} AS SELECT * "  # noqa: S608
                                 f"FROM read_parquet([{files}])")
            elif segs:  # S3: pyarrow (imported here: a local query needs none)
                import pyarrow.dataset as pads

                from watchdog.archive.layout import SCHEMAS

                data = pads.dataset([store.path(s.path) for s in segs], schema=SCHEMAS[ds],
                                    filesystem=store.fs, format="parquet")
                _check_fragments(data, store)
                self.con.register(name, data)
            else:
                self.con.execute(f"CREATE TEMP VIEW {name} AS {empty_select(ds)}")
            if ds == EVENTS:  # stored lean: the columns come from the documents
                self.con.execute("CREATE TEMP VIEW events_all AS "
                                 + EVENT_VIEW.format(source="events_stored"))
                name = "events_all"
            self.con.execute(f"CREATE TEMP VIEW {ds} AS SELECT * "  # noqa: S608 (fixed)
                             f"FROM {name} {ONCE}")

    def sql(self, query: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(query, params or []).fetchall()

    def close(self) -> None:
        self.con.close()
