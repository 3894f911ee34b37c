"""DuckDB over the archive: each dataset a view of its live segments (those the manifest
records, never a file merely lying in the prefix), pruned to a time range by the manifest's
first/last event time per segment. DuckDB reads the pyarrow datasets directly (no network
extension: the same code reads a directory and S3).

Each id once, whatever is stored: the writers skip an id their day already holds, but two
daemon instances that flush the same redelivered event at the same moment (a rebalance while
both were writing) can each store it. So every view here keeps one row per id (``<dataset>``),
the first by time then document; ``<dataset>_stored`` is what the files hold, copies included.
:data:`ONCE` is that rule, for a query that filters first (same result: copies of an id are
the same delivered document)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from watchdog.archive import manifest as mf
from watchdog.archive.datasets import DATASETS, EVENT_VIEW, EVENTS, SQL_COLUMNS, empty_select
from watchdog.archive.store import Store

# one row per id: appended to a query over a ``*_stored`` view (before its ORDER BY)
ONCE = "QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts, raw) = 1"


def stamp(t: datetime) -> str:
    """The manifest's form of a time (RFC 3339 UTC, microseconds), which sorts as text."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


class ArchiveQuery:
    """``q.sql(...)`` over the views ``events``, ``directory``, ``subjects``, ``accounts``,
    ``alerts``, each id once (``ranged`` datasets restricted to segments that may hold
    [first, last)); ``events_all``: the events as stored, with their query columns."""

    def __init__(self, store: Store, *, first: datetime | None = None,
                 last: datetime | None = None, ranged: tuple[str, ...] = ("events",),
                 contents: mf.Contents | None = None) -> None:
        self.store = store
        self.contents = contents or mf.contents(store)
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        # some events' segments of format 2 (watchdog.archive.layout) may be among those read:
        # a search by subject must then look into the documents
        self.lean_events = False
        lo = stamp(first) if first else None
        hi = stamp(last) if last else None
        for ds in DATASETS:
            segs = (self.contents.of(ds, lo, hi) if ds in ranged
                    else self.contents.of(ds))
            name = f"{ds}_stored"
            if segs and store.is_local:
                # DuckDB's own Parquet reader: parallel, and several times faster than a
                # pyarrow dataset (which S3 needs: DuckDB's httpfs is a download)
                files = ", ".join("'" + store.path(s.path).replace("'", "''") + "'"
                                  for s in segs)
                if ds == EVENTS and self._lean(files, len(segs)):
                    # by name: segments of format 2 lack ``subject_ids`` (null here)
                    src = f"read_parquet([{files}], union_by_name = true)"
                    described = self.con.execute(f"DESCRIBE SELECT * FROM {src}")  # noqa: S608
                    have = {r[0] for r in described.fetchall()}
                    cols = ", ".join(n if n in have else f"CAST(NULL AS {t}) AS {n}"
                                     for n, t in SQL_COLUMNS[ds])
                    self.con.execute(f"CREATE TEMP VIEW {name} AS "  # noqa: S608 (fixed)
                                     f"SELECT {cols} FROM {src}")
                else:
                    self.con.execute(f"CREATE TEMP VIEW {name} AS SELECT * "  # noqa: S608
                                     f"FROM read_parquet([{files}])")
            elif segs:  # S3: pyarrow (imported here: a local query needs none)
                import pyarrow.dataset as pads

                # not looked for (a read of every footer): the documents are read anyway
                self.lean_events = self.lean_events or ds == EVENTS

                from watchdog.archive.layout import STORED_SCHEMAS

                self.con.register(name, pads.dataset(  # a column a segment lacks: nulls
                    [store.path(s.path) for s in segs], schema=STORED_SCHEMAS[ds],
                    filesystem=store.fs, format="parquet"))
            else:
                self.con.execute(f"CREATE TEMP VIEW {name} AS {empty_select(ds)}")
            if ds == EVENTS:  # stored lean: the columns come from the documents
                self.con.execute("CREATE TEMP VIEW events_all AS "
                                 + EVENT_VIEW.format(source="events_stored"))
                name = "events_all"
            self.con.execute(f"CREATE TEMP VIEW {ds} AS SELECT * "  # noqa: S608 (fixed)
                             f"FROM {name} {ONCE}")

    def _lean(self, files: str, n: int) -> bool:
        """Does any of the ``n`` local segments ``files`` lack ``subject_ids`` (format 2)?"""
        with_column = self.con.execute(
            f"SELECT count(DISTINCT file_name) FROM parquet_schema([{files}]) "  # noqa: S608
            "WHERE name = 'subject_ids'").fetchall()[0][0]
        self.lean_events = with_column < n
        return self.lean_events

    def sql(self, query: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(query, params or []).fetchall()

    def close(self) -> None:
        self.con.close()
