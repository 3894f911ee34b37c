"""The archive's datasets by name, and the SQL that gives access events their query columns.

Apart from :mod:`.layout` (the Arrow schemas and the tables the writers build) so that a
command that only queries a local archive (``subject-report``, ``evidence``) imports DuckDB
and not pyarrow and numpy (~0.4 s of its start on a loaded machine).
"""

from __future__ import annotations

import msgspec

EVENTS, DIRECTORY, SUBJECTS, ACCOUNTS, ALERTS = (
    "events", "directory", "subjects", "accounts", "alerts")
DATASETS = (EVENTS, DIRECTORY, SUBJECTS, ACCOUNTS, ALERTS)
MANIFEST_DIR = "_manifest"
# the segments' format, in each one's Parquet metadata under FORMAT_KEY (watchdog.archive.
# layout). 1: every column stored. 3: the same columns, but an access event's ``subject_ids``
# may be null, meaning "not stored: the ids of the document's data.subject_ids" (what a daemon
# writes by default: the column cost a fifth of its writer's CPU; compaction stores it,
# writing format 1). 2 was tried on 2026-12-06 without the column and never released: the
# number is not reused
FORMAT = 1
LEAN_FORMAT = 3
READ_FORMATS = (FORMAT, LEAN_FORMAT)
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

class _Data(msgspec.Struct, gc=False):
    subject_ids: tuple[str, ...] = ()


class _Event(msgspec.Struct, gc=False):
    data: _Data = msgspec.field(default_factory=_Data)


_subject_ids = msgspec.json.Decoder(_Event)


def subject_ids_of(doc: str | bytes) -> tuple[str, ...]:
    """An access event's ``data.subject_ids`` as the daemon's decoder reads them (the same
    library: a key given twice counts as its last value, where DuckDB's JSON functions take
    its first). ValueError for a document that is not an access event's JSON."""
    try:
        return _subject_ids.decode(doc).data.subject_ids
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise ValueError(f"a document's subject ids cannot be read: {err}") from None


# ``subject_ids`` of a format-3 row that does not store them: from its document (validated when
# archived: an array of strings, or absent), by DuckDB (a key given twice: its first value;
# subject-report reads such rows with :func:`subject_ids_of` instead); ``derived`` says which
# rows these are
SUBJECTS_SQL = ("coalesce(s.subject_ids, CAST(coalesce(json_extract(s.raw, "
                "'$.data.subject_ids'), '[]'::JSON) AS VARCHAR[]))")
EVENT_VIEW = (f"SELECT s.id AS id, s.ts AS ts, {SUBJECTS_SQL} AS subject_ids, "  # noqa: S608
              "s.subject_ids IS NULL AS derived, s.raw AS raw, "
              + ", ".join(f"{sql} AS {name}" for name, sql in EVENT_COLUMNS_SQL.items())
              + " FROM {source} AS s")

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
