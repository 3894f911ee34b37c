"""A partition too large to compact in memory, held by DuckDB with bounded memory: its
segments' tables are added one at a time to an in-memory DuckDB database limited to
``memory_limit``, which spills what does not fit (the rows, then the sort's runs) to a
temporary directory on local disk; then the rows are read back each id once
(:data:`.reader.ONCE`, the copy every query keeps) in (ts, id) order, in tables of a given
number of rows: what compaction writes as segments. Its memory then no longer grows with the
partition (bench/bench_compact_memory.py; docs/operations.md, *Compaction*). An in-memory
database, not a file: its inserts cost half (3M events: 7.7 s against 15 s, measured
2026-12-08), for more disk while it spills.

The bytes DuckDB sees are the tables compaction made of segments whose SHA-256 it checked,
never the files themselves (a file changed between the check and a second read would be
laundered into a freshly hashed segment).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import duckdb
import pyarrow as pa

from watchdog.archive.reader import ONCE

# DuckDB's part of the compactor's memory (the shipped Kubernetes Jobs' limit: 2 GiB)
MEMORY_LIMIT = "512MB"


class Spill:
    """Rows of ``schema``, spilled under ``directory`` (default: the system's temporary
    directory, ``TMPDIR``) into a directory of their own, deleted on :meth:`close`."""

    def __init__(self, schema: pa.Schema, *, memory_limit: str = MEMORY_LIMIT,
                 directory: str | None = None) -> None:
        self.schema = schema
        self._dir = Path(tempfile.mkdtemp(prefix="watchdog-compact-", dir=directory))
        self.rows = 0
        try:
            self._con = duckdb.connect(":memory:", config={
                "memory_limit": memory_limit, "temp_directory": str(self._dir / "tmp"),
                # the one query orders its result: nothing needs the order rows came in
                "preserve_insertion_order": False})
            self._con.register("_empty", schema.empty_table())
            self._con.execute("CREATE TABLE rows AS SELECT * FROM _empty")
            self._con.unregister("_empty")
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def add(self, table: pa.Table) -> None:
        """Append ``table`` (of :attr:`schema`'s columns, in its order)."""
        self._con.register("_part", table)
        try:
            self._con.execute("INSERT INTO rows SELECT * FROM _part")
        finally:
            self._con.unregister("_part")
        self.rows += len(table)

    def distinct(self) -> int:
        """How many rows :meth:`once` yields (one per id)."""
        rows = self._con.execute("SELECT count(*) FROM (SELECT DISTINCT id FROM rows)"
                                 ).fetchall()  # all: an unfinished result blocks the next query
        return int(rows[0][0])

    def once(self, rows: int) -> Iterator[pa.Table]:
        """One row per id, in (ts, id) order, as tables of ``rows`` rows (the last: the rest)."""
        # not execute(): its Arrow result is one more copy of the rows
        reader = self._con.sql(f"SELECT * FROM rows {ONCE} ORDER BY ts, id"  # noqa: S608
                               ).to_arrow_reader(min(rows, 64 * 1024))
        held: list[pa.RecordBatch] = []
        count = 0
        for batch in reader or ():
            held.append(batch)
            count += len(batch)
            while count >= rows:
                table = pa.Table.from_batches(held)
                yield self._typed(table.slice(0, rows))
                rest = table.slice(rows)
                held, count = rest.to_batches(), len(rest)
        if count:
            yield self._typed(pa.Table.from_batches(held))

    def _typed(self, table: pa.Table) -> pa.Table:
        # DuckDB gives its own types back (a time zone, string views): the schema's again
        return table.cast(self.schema).combine_chunks()

    def close(self) -> None:
        try:
            self._con.close()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
