"""The archive's datasets, their Parquet columns and the day partition of each row.

Every row keeps the document exactly as it arrived (``raw``), so a replay of the archive sees
the bytes the live run saw; the other columns are what queries filter and show, taken from the
documents by pyarrow's JSON reader in one columnar pass per segment (no Python per row: the
daemon's cost per event is an append). Partition: the UTC day of event time (access events,
alerts: ``@timestamp``/``ts``; records: ``effective``), as a Hive directory ``day=YYYY-MM-DD``
that DuckDB, Spark and Athena understand. Absent fields are nulls (``outcome`` null means the
contract's default, success).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pyarrow.json as pj

EVENTS, DIRECTORY, SUBJECTS, ACCOUNTS, ALERTS = (
    "events", "directory", "subjects", "accounts", "alerts")
DATASETS = (EVENTS, DIRECTORY, SUBJECTS, ACCOUNTS, ALERTS)
MANIFEST_DIR = "_manifest"

TS = pa.timestamp("us", tz="UTC")
_s = pa.string()
_l = pa.list_(pa.string())

# dataset -> (column, JSON path, type). ``id``, ``ts`` and ``raw`` come from the writer: ``ts``
# from the decoded document (pyarrow's reader takes neither nanoseconds nor every RFC 3339 form)
COLUMNS: dict[str, tuple[tuple[str, tuple[str, ...], pa.DataType], ...]] = {
    EVENTS: (
        ("dataset", ("event", "dataset"), _s),
        ("action", ("event", "action"), _s), ("outcome", ("event", "outcome"), _s),
        ("user_id", ("user", "id"), _s), ("resource", ("data", "resource"), _s),
        ("categories", ("data", "categories"), _l), ("subject_ids", ("data", "subject_ids"), _l),
        ("subject_count", ("data", "subject_count"), pa.int64()),
        ("purpose", ("data", "purpose"), _s), ("legal_basis", ("data", "legal_basis"), _s),
        ("dest_kind", ("destination", "kind"), _s),
        ("dest_domain", ("destination", "domain"), _s),
        ("dest_organization", ("destination", "organization"), _s),
        ("dest_country", ("destination", "country"), _s),
        ("source_ip", ("source", "ip"), _s),
    ),
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
          for ds, cols in COLUMNS.items()}
SCHEMAS: dict[str, pa.Schema] = {
    ds: pa.schema([("id", _s), ("ts", TS), *((n, t) for n, _p, t in cols), ("raw", _s)])
    for ds, cols in COLUMNS.items()
}


def day_of(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d")


def day_of_epoch(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def _one_line(raw: bytes) -> bytes:
    # a pretty-printed document spans lines; the reader needs one per line
    return orjson.dumps(orjson.loads(raw)) if b"\n" in raw or b"\r" in raw else raw


def to_table(dataset: str, ids: list[str], times: list[float], raws: list[bytes]) -> pa.Table:
    """The segment table of already validated documents: their ids, event times (seconds
    since the epoch) and bytes (kept byte for byte)."""
    body = b"\n".join(_one_line(r) for r in raws)
    parsed = pj.read_json(io.BytesIO(body), parse_options=_PARSE[dataset],
                          read_options=pj.ReadOptions(use_threads=False,
                                                      block_size=max(1 << 20, len(body) + 1)))
    flat = parsed.flatten()
    names = flat.column_names
    micros = pa.array([round(t * 1e6) for t in times], pa.int64())
    arrays = [pa.array(ids, _s), micros.cast(TS)]
    for _name, path, typ in COLUMNS[dataset]:
        dotted = ".".join(path)
        arrays.append(flat.column(dotted) if dotted in names
                      else pa.nulls(len(ids), typ))
    arrays.append(pa.array(raws, pa.binary()).cast(_s))
    return pa.Table.from_arrays(arrays, schema=SCHEMAS[dataset])


def segment_dir(dataset: str, day: str) -> str:
    return f"{dataset}/day={day}"


def parse_segment_path(rel: str) -> tuple[str, str] | None:
    """(dataset, day) of ``<dataset>/day=<day>/<name>.parquet``, None for anything else."""
    parts = rel.split("/")
    if (len(parts) != 3 or parts[0] not in DATASETS or not parts[1].startswith("day=")
            or not parts[2].endswith(".parquet")):
        return None
    return parts[0], parts[1][4:]
