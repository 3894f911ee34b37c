"""The archive's datasets by name, and the SQL that gives access events their query columns.

Apart from :mod:`.layout` (the Arrow schemas and the tables the writers build) so that a
command that only queries a local archive (``subject-report``, ``evidence``) imports DuckDB
and not pyarrow and numpy (~0.4 s of its start on a loaded machine).
"""

from __future__ import annotations

EVENTS, DIRECTORY, SUBJECTS, ACCOUNTS, ALERTS = (
    "events", "directory", "subjects", "accounts", "alerts")
DATASETS = (EVENTS, DIRECTORY, SUBJECTS, ACCOUNTS, ALERTS)
MANIFEST_DIR = "_manifest"
# the segments' format, in each one's Parquet metadata under FORMAT_KEY (watchdog.archive.
# layout); the only one any release wrote and the only one read
FORMAT = 1
FORMAT_KEY = b"watchdog.archive.format"

# DuckDB: the query columns of access events, from the stored document
EVENT_COLUMNS_SQL = {
    "dataset": "json_extract_string(raw, '$.event.dataset')",
    "action": "json_extract_string(raw, '$.event.action')",
    "outcome": "json_extract_string(raw, '$.event.outcome')",
    "user_id": "json_extract_string(raw, '$.user.id')",
    "resource": "json_extract_string(raw, '$.data.resource')",
    "categories": "CAST(json_extract(raw, '$.data.categories') AS VARCHAR[])",
    "subject_count": "CAST(json_extract(raw, '$.data.subject_count') AS BIGINT)",
    "purpose": "json_extract_string(raw, '$.data.purpose')",
    "legal_basis": "json_extract_string(raw, '$.data.legal_basis')",
    "dest_kind": "json_extract_string(raw, '$.destination.kind')",
    "dest_domain": "json_extract_string(raw, '$.destination.domain')",
    "dest_organization": "json_extract_string(raw, '$.destination.organization')",
    "dest_country": "json_extract_string(raw, '$.destination.country')",
    "source_ip": "json_extract_string(raw, '$.source.ip')",
}
EVENT_VIEW = ("SELECT id, ts, subject_ids, raw, "  # noqa: S608 (fixed names)
              + ", ".join(f"{sql} AS {name}" for name, sql in EVENT_COLUMNS_SQL.items())
              + " FROM {source}")

# the stored columns of each dataset as DuckDB types (:data:`.layout.SCHEMAS` in Arrow's; a
# test keeps the two the same): the empty view of a dataset with no segment yet
_TEXT, _TS, _TEXTS = "VARCHAR", "TIMESTAMP WITH TIME ZONE", "VARCHAR[]"
SQL_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    EVENTS: (("id", _TEXT), ("ts", _TS), ("subject_ids", _TEXTS), ("raw", _TEXT)),
    DIRECTORY: (("id", _TEXT), ("ts", _TS), ("user_id", _TEXT), ("status", _TEXT),
                ("raw", _TEXT)),
    SUBJECTS: (("id", _TEXT), ("ts", _TS), ("subject_id", _TEXT), ("type", _TEXT),
               ("raw", _TEXT)),
    ACCOUNTS: (("id", _TEXT), ("ts", _TS), ("user_id", _TEXT), ("enabled", "BOOLEAN"),
               ("raw", _TEXT)),
    ALERTS: (("id", _TEXT), ("ts", _TS), ("rule", _TEXT), ("severity", _TEXT),
             ("user_id", _TEXT), ("event_ids", _TEXTS), ("pseudonyms", _TEXTS),
             ("raw", _TEXT)),
}


def empty_select(dataset: str) -> str:
    """A query of no rows with the dataset's stored columns."""
    cols = ", ".join(f"CAST(NULL AS {t}) AS {n}" for n, t in SQL_COLUMNS[dataset])
    return f"SELECT {cols} WHERE false"
