"""The archive's datasets, their Parquet columns and the day partition of each row.

Every row keeps the document exactly as it arrived (``raw``), so a replay of the archive sees
the bytes the live run saw; the other columns are what queries filter and show, taken from the
documents by pyarrow's JSON reader in one columnar pass per segment (no Python per row: the
daemon's cost per event is an append). Partition: the UTC day of event time (access events,
alerts: ``@timestamp``/``ts``; records: ``effective``), as a Hive directory ``day=YYYY-MM-DD``
that DuckDB, Spark and Athena understand. Absent fields are nulls (``outcome`` null means the
contract's default, success).

Format: the segments' columns are :data:`SCHEMAS`, format :data:`FORMAT` 1, which each
segment says in its Parquet metadata under :data:`FORMAT_KEY` (segments written before the key
carry none: format 1 too). A daemon writes its access events as format 3 by default
(:data:`LEAN_SCHEMA`): the same columns, ``subject_ids`` null, to be read from the documents
(:func:`subjects_of`) until compaction stores them. Readers take formats 1 and 3 and refuse any
other by the segment's name (:mod:`watchdog.archive.reader`). A format 2 without the column
was tried on 2026-12-06 and reverted within the hour, never released (docs/operations.md
"Cost").
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pj

# re-exported: the names are in .datasets, which imports no pyarrow (the queries' start)
from watchdog.archive.datasets import ACCOUNTS as ACCOUNTS
from watchdog.archive.datasets import ALERTS as ALERTS
from watchdog.archive.datasets import DATASETS as DATASETS
from watchdog.archive.datasets import DIRECTORY as DIRECTORY
from watchdog.archive.datasets import EVENTS as EVENTS
from watchdog.archive.datasets import FORMAT as FORMAT
from watchdog.archive.datasets import FORMAT_KEY as FORMAT_KEY
from watchdog.archive.datasets import LEAN_FORMAT as LEAN_FORMAT
from watchdog.archive.datasets import MANIFEST_DIR as MANIFEST_DIR
from watchdog.archive.datasets import SUBJECTS as SUBJECTS
from watchdog.archive.datasets import subject_ids_of

TS = pa.timestamp("us", tz="UTC")
_s = pa.string()
_l = pa.list_(pa.string())

# dataset -> (column, JSON path, type). ``id``, ``ts`` and ``raw`` come from the writer: ``ts``
# from the decoded document (pyarrow's reader takes neither nanoseconds nor every RFC 3339 form)
COLUMNS: dict[str, tuple[tuple[str, tuple[str, ...], pa.DataType], ...]] = {
    # access events: id, ts, subject_ids (from the decoded event: what subject reports search)
    # and raw are stored. Parsing ~400 bytes of JSON per event into columns cost the daemon
    # ~3.4 us per event (a quarter of its whole cost); the other columns are derived from
    # ``raw`` by DuckDB (:data:`.datasets.EVENT_VIEW`) for the rows a query selects
    EVENTS: (),
    DIRECTORY: (("user_id", ("user_id",), _s),
                ("status", ("status",), _s)),
    SUBJECTS: (("subject_id", ("subject_id",), _s),
               ("type", ("type",), _s)),
    ACCOUNTS: (("user_id", ("user_id",), _s),
               ("enabled", ("enabled",), pa.bool_())),
    ALERTS: (("rule", ("rule",), _s), ("severity", ("severity",), _s),
             ("user_id", ("user_id",), _s), ("event_ids", ("event_ids",), _l),
             ("pseudonyms", ("subjects", "pseudonyms"), _l)),
}


def _parse_schema(cols: tuple[tuple[str, tuple[str, ...], pa.DataType], ...]) -> pa.Schema:
    """The nested JSON schema that holds exactly the paths of ``cols``."""
    tree: dict[str, object] = {}
    for _name, path, typ in cols:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})  # type: ignore[assignment]
        node[path[-1]] = typ

    def build(node: dict[str, object]) -> list[pa.Field]:
        return [pa.field(k, pa.struct(build(v)) if isinstance(v, dict) else v)
                for k, v in node.items()]

    return pa.schema(build(tree))


_PARSE = {ds: pj.ParseOptions(explicit_schema=_parse_schema(cols),
                              unexpected_field_behavior="ignore")
          for ds, cols in COLUMNS.items() if cols}
SCHEMAS: dict[str, pa.Schema] = {
    ds: pa.schema([("id", _s), ("ts", TS), *((n, t) for n, _p, t in cols),
                   *([("subject_ids", _l)] if ds == EVENTS else []), ("raw", _s)],
                  metadata={FORMAT_KEY: str(FORMAT).encode()})
    for ds, cols in COLUMNS.items()
}
LEAN_SCHEMA = SCHEMAS[EVENTS].with_metadata({FORMAT_KEY: str(LEAN_FORMAT).encode()})


def subjects_of(subject_ids: pa.Array | pa.ChunkedArray,
                raw: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The ``subject_ids`` column with each null (a format-3 row) read from its document
    (:func:`.datasets.subject_ids_of`, as the decoder reads them). Raises ValueError for a
    document that is not an access event's JSON (it was validated when archived)."""
    stored = subject_ids.to_pylist()
    docs = raw.to_pylist()
    return pa.array([list(subject_ids_of(d)) if s is None else s
                     for s, d in zip(stored, docs, strict=True)], _l)


def day_of(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d")


def day_of_epoch(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def _raw_array(raws: list[bytes]) -> pa.Array:
    """The documents as one string array, built from their bytes without a copy per value
    (``pa.array`` of bytes then a cast: 2.6 us per event; this: 0.5)."""
    offsets = np.zeros(len(raws) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, raws), dtype=np.int64, count=len(raws)), out=offsets[1:])
    arr = pa.LargeStringArray.from_buffers(len(raws), pa.py_buffer(offsets),
                                           pa.py_buffer(b"".join(raws)))
    try:
        arr.validate(full=True)  # UTF-8: the decoder does not look inside every string
    except pa.ArrowInvalid:
        arr = pa.array([r.decode("utf-8", "replace") for r in raws], pa.large_string())
    return arr.cast(_s)


def _one_line(raw: bytes) -> bytes:
    # a pretty-printed document spans lines; the reader needs one per line
    return orjson.dumps(orjson.loads(raw)) if b"\n" in raw or b"\r" in raw else raw


def to_table(dataset: str, ids: list[str] | pa.ChunkedArray,
             times: list[float] | np.ndarray, raws: list[bytes],
             subjects: list[tuple[str, ...]] | pa.ChunkedArray | None = None,
             raw: pa.ChunkedArray | None = None, *, lean: bool = False) -> pa.Table:
    """The segment table of already validated documents: their ids, event times (seconds
    since the epoch) and bytes (kept byte for byte). ``ids``, ``subjects`` and ``raw`` may
    be columns already (:class:`watchdog.archive.buffer.Buffer`); ``raws`` are then needed
    only by datasets with parsed columns (records, alerts). ``lean``: access events of format
    3, their subject ids not stored (``subjects`` unused)."""
    micros = (np.asarray(times, dtype=np.float64) * 1e6).round().astype(np.int64)
    n = len(micros)
    arrays: list[pa.Array | pa.ChunkedArray] = [
        ids if isinstance(ids, pa.ChunkedArray) else pa.array(ids, _s),
        pa.array(micros, pa.int64()).cast(TS)]
    cols = COLUMNS[dataset]
    if cols:
        body = b"\n".join(_one_line(r) for r in raws)
        parsed = pj.read_json(io.BytesIO(body), parse_options=_PARSE[dataset],
                              read_options=pj.ReadOptions(
                                  use_threads=False, block_size=max(1 << 20, len(body) + 1)))
        flat = parsed.flatten()
        names = flat.column_names
        for _name, path, typ in cols:
            dotted = ".".join(path)
            arrays.append(flat.column(dotted) if dotted in names
                          else pa.nulls(n, typ))
    lean = lean and dataset == EVENTS
    if lean:
        arrays.append(pa.nulls(n, _l))
    elif dataset == EVENTS:
        arrays.append(subjects if isinstance(subjects, pa.ChunkedArray)
                      else pa.array(subjects if subjects is not None else [()] * n, _l))
    arrays.append(_raw_array(raws) if raw is None else raw)
    return pa.Table.from_arrays(arrays, schema=LEAN_SCHEMA if lean else SCHEMAS[dataset])


def segment_dir(dataset: str, day: str) -> str:
    return f"{dataset}/day={day}"


def parse_segment_path(rel: str) -> tuple[str, str] | None:
    """(dataset, day) of ``<dataset>/day=<day>/<name>.parquet``, None for anything else."""
    parts = rel.split("/")
    if (len(parts) != 3 or parts[0] not in DATASETS or not parts[1].startswith("day=")
            or not parts[2].endswith(".parquet")):
        return None
    return parts[0], parts[1][4:]
