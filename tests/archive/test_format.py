"""Segment formats: access events' segments store ``subject_ids`` and say their format; an
archive that also holds segments of format 2 (no ``subject_ids``, written by main for an hour
on 2026-12-06) is verified and queried as one, and ``subject-report`` finds exactly the events
whose decoded ``data.subject_ids`` name the subject, however a format-2 document spells them
(escapes, repeated keys, the id elsewhere)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tests.builders import event_doc
from watchdog.archive import manifest as mf
from watchdog.archive.layout import EVENTS, FORMAT_KEY
from watchdog.archive.reader import ArchiveQuery
from watchdog.archive.report import subject_report
from watchdog.archive.store import Store, open_store
from watchdog.archive.writer import encode_segment
from watchdog.cli import main
from watchdog.decode import Decoder
from watchdog.events import AccessEvent, check_times

DEC: Decoder[AccessEvent] = Decoder(AccessEvent, check=check_times)


def _doc(i: int, subjects: list[str], day: int = 1, **kw: object) -> bytes:
    return orjson.dumps(event_doc(id=f"e{i}", when=f"2026-11-{day:02d}T10:00:{i % 60:02d}Z",
                                  subject_ids=subjects, **kw))  # type: ignore[arg-type]


def _with_data(i: int, data: str) -> bytes:
    """An event whose ``data`` object is written by hand (escapes, repeated keys)."""
    head = _doc(i, [])[:-1].split(b',"data":')[0]
    return head + b',"data":' + data.encode() + b"}"


AWKWARD = [
    _doc(1, ["s-1"]),
    _doc(2, ["s-10", "s-1x"]),  # ids that start with s-1: not s-1
    _doc(3, ["other"], user="s-1", resource="s-1"),  # s-1 named, but not as a subject
    _with_data(4, r'{"subject_ids":["s\u002d1"]}'),  # s-1, escaped
    _with_data(5, '{"subject_ids":["s-1"],"subject_ids":["s-2"]}'),  # the last counts: s-2
    _with_data(6, '{"subject_ids":["s-2"],"subject_ids":["s-1"]}'),  # s-1
    _with_data(7, r'{"resource":"a\/b","subject_ids":["s-2"],"subject_ids":["s-1"]}'),
    _with_data(8, r'{"resource":"a\/b","subject_ids":["s-1"],"subject_ids":["s-2"]}'),
    _with_data(9, r'{"subject_ids":["q\"1"]}'),  # an id with a quote
    _doc(10, []),
]


def _named(docs: list[bytes], subject: str) -> list[str]:
    out = []
    for raw in docs:
        ev = DEC.decode(raw)
        assert isinstance(ev, AccessEvent), raw
        if subject in ev.data.subject_ids:
            out.append(ev.event.id)
    return sorted(out)


def _write(tmp: Path, name: str, docs: list[bytes]) -> Path:
    src = tmp / f"{name}.jsonl"
    src.write_bytes(b"\n".join(docs) + b"\n")
    out = tmp / name
    assert main(["archive", "write", "--events", str(src), "--out", str(out)]) == 0
    return out


def _write_format2(store: Store, docs: list[bytes]) -> None:
    """A segment as the writer made it in format 2: no ``subject_ids``."""
    evs = [DEC.decode(raw) for raw in docs]
    assert all(isinstance(e, AccessEvent) for e in evs)
    ts = [e.timestamp for e in evs]  # type: ignore[union-attr]
    table = pa.table({
        "id": pa.array([e.event.id for e in evs], pa.string()),  # type: ignore[union-attr]
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "raw": pa.array([r.decode() for r in docs], pa.string())},
        metadata={FORMAT_KEY: b"2"})
    data = encode_segment(table)
    day = min(ts).strftime("%Y-%m-%d")
    path = f"events/day={day}/old-000000000001-0000.parquet"
    store.write_bytes(path, data)
    stamp = "%Y-%m-%dT%H:%M:%S.%fZ"
    seg = mf.Segment(path, EVENTS, day, len(docs), data.size, hashlib.sha256(data).hexdigest(),
                     min(ts).strftime(stamp), max(ts).strftime(stamp))
    mf.ManifestWriter(store, "old").append("segments", segments=[seg.as_dict()])


def _report(store: Store, subject: str) -> list[str]:
    q = ArchiveQuery(store)
    try:
        return sorted(e["id"] for e in subject_report(q, subject, "p").events)
    finally:
        q.close()


def test_segments_store_subject_ids_and_say_their_format(tmp_path: Path) -> None:
    out = _write(tmp_path, "a", AWKWARD)
    (seg,) = mf.contents(open_store(str(out))).of(EVENTS)
    schema = pq.read_schema(out / seg.path)
    assert schema.names == ["id", "ts", "subject_ids", "raw"]
    assert schema.metadata[FORMAT_KEY] == b"1"
    q = ArchiveQuery(open_store(str(out)))
    assert not q.lean_events  # a subject's events: by the stored column alone
    q.close()
    _write_format2(open_store(str(out)), [_doc(300, ["s-1"], day=5)])
    q = ArchiveQuery(open_store(str(out)))
    assert q.lean_events
    q.close()


def test_subject_report_is_exact_whatever_a_format2_document_says(tmp_path: Path) -> None:
    out = _write(tmp_path, "a", [_doc(500, ["s-9"], day=3)])
    store = open_store(str(out))
    _write_format2(store, AWKWARD)
    for subject in ("s-1", "s-2", "s-10", 'q"1', "other", "nobody"):
        assert _report(store, subject) == _named(AWKWARD, subject), subject
    assert _report(store, "s-1") == ["e1", "e4", "e6", "e7"]
    assert _report(store, "s-9") == ["e500"]


def test_an_archive_of_both_formats_is_verified_and_queried_as_one(tmp_path: Path) -> None:
    new = [_doc(100 + i, [f"s-{i % 3}"], day=2) for i in range(30)] + AWKWARD[4:9]
    out = _write(tmp_path, "a", new)
    store = open_store(str(out))
    old = [_doc(200 + i, [f"s-{i % 3}"], day=1) for i in range(30)]
    _write_format2(store, old)
    assert main(["archive", "verify", str(out)]) == 0
    for subject in ("s-0", "s-1", "s-2", 'q"1'):
        assert _report(store, subject) == _named(old + new, subject), subject
    q = ArchiveQuery(store)
    try:  # the view's subject_ids: stored, or from the document (format 2)
        rows = dict(q.sql("SELECT id, subject_ids FROM events"))
    finally:
        q.close()
    assert rows["e201"] == ["s-1"]  # format 2
    assert rows["e101"] == ["s-1"]  # stored
    assert rows["e9"] == ['q"1']
    assert len(rows) == 65
