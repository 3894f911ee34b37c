"""The DuckDB columns of a dataset with no segment yet are those of its Parquet segments."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from watchdog.archive.datasets import DATASETS, empty_select
from watchdog.archive.layout import SCHEMAS


@pytest.mark.parametrize("dataset", DATASETS)
def test_empty_view_has_the_columns_of_the_segments(dataset: str) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    segments = pa.table({f.name: pa.array([], f.type) for f in SCHEMAS[dataset]})
    con.register("segments", segments)
    of_segments = con.execute("DESCRIBE SELECT * FROM segments").fetchall()
    of_empty = con.execute(f"DESCRIBE {empty_select(dataset)}").fetchall()
    assert [(r[0], r[1]) for r in of_empty] == [(r[0], r[1]) for r in of_segments]
    assert con.execute(empty_select(dataset)).fetchall() == []
