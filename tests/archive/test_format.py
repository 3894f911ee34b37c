"""Segment formats: segments store the access events' ``subject_ids`` and say their format (1)
in their Parquet metadata; a segment without the key (written before it) is read as format 1;
a daemon's segments of format 3 leave ``subject_ids`` null, read from the documents until
compaction stores them (tests/archive/test_lean.py); a segment of any other format is refused,
naming it in one line, by every reader (the query, ``subject-report``, ``archive verify``), not
misread."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from tests.archive.helpers import add_segment
from tests.builders import event_doc
from watchdog.archive import manifest as mf
from watchdog.archive.layout import EVENTS, FORMAT_KEY
from watchdog.archive.reader import ArchiveQuery, SegmentFormatError
from watchdog.archive.report import subject_report
from watchdog.archive.store import Store, open_store
from watchdog.cli import main


def _doc(i: int, subjects: list[str], day: int = 1) -> bytes:
    return orjson.dumps(event_doc(id=f"e{i}", when=f"2026-11-{day:02d}T10:00:{i % 60:02d}Z",
                                  subject_ids=subjects))


def _write(tmp: Path, docs: list[bytes]) -> Path:
    src = tmp / "events.jsonl"
    src.write_bytes(b"\n".join(docs) + b"\n")
    out = tmp / "archive"
    assert main(["archive", "write", "--events", str(src), "--out", str(out)]) == 0
    return out


def _report(store: Store, subject: str) -> list[str]:
    q = ArchiveQuery(store)
    try:
        return sorted(e["id"] for e in subject_report(q, subject, "p").events)
    finally:
        q.close()


def test_segments_store_subject_ids_and_say_format_1(tmp_path: Path) -> None:
    out = _write(tmp_path, [_doc(1, ["s-1"]), _doc(2, [])])
    (seg,) = mf.contents(open_store(str(out))).of(EVENTS)
    schema = pq.read_schema(out / seg.path)
    assert schema.names == ["id", "ts", "subject_ids", "raw"]
    assert schema.metadata[FORMAT_KEY] == b"1"


def test_a_segment_without_the_key_is_read_as_format_1(tmp_path: Path) -> None:
    out = _write(tmp_path, [_doc(100 + i, [f"s-{i % 3}"], day=2) for i in range(30)])
    store = open_store(str(out))
    add_segment(store, [_doc(200 + i, [f"s-{i % 3}"], day=1) for i in range(30)], None)
    assert main(["archive", "verify", str(out)]) == 0
    assert _report(store, "s-1") == sorted(
        [f"e{100 + i}" for i in range(1, 30, 3)] + [f"e{200 + i}" for i in range(1, 30, 3)])


@pytest.mark.parametrize(("fmt", "subject_ids"), [
    (b"2", False),  # 2026-12-06's format 2, never released: no subject_ids column
    (b"4", True),   # the columns of format 1, but another format: the key decides
])
def test_a_segment_of_another_format_is_refused_by_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: bytes,
        subject_ids: bool) -> None:
    out = _write(tmp_path, [_doc(1, ["s-1"], day=2)])
    store = open_store(str(out))
    path = add_segment(store, [_doc(2, ["s-1"])], fmt, subject_ids=subject_ids)
    with pytest.raises(SegmentFormatError) as err:
        ArchiveQuery(store)
    said = str(err.value)
    assert said == (f"segment {path}: format '{fmt.decode()}', this watchdog reads formats 1 "
                    "and 3 only (written by a newer watchdog?)")
    capsys.readouterr()
    assert main(["subject-report", "--archive", str(out), "--subject", "s-1", "--json",
                 "--audit", str(tmp_path / "access.jsonl")]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.splitlines()[-1] == f"watchdog: error: {out}: {said}"
    assert main(["archive", "verify", str(out)]) == 1
    assert f"{out}: {said}\n" in capsys.readouterr().out
