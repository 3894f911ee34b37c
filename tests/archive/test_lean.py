"""Format 3: a daemon's segments leave the access events' ``subject_ids`` null (they cost it a
fifth of the archive's CPU); readers take them from the documents, exactly (escaped ids
included), and compaction stores them, writing format 1."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from tests.archive.helpers import archive_items
from tests.builders import event_doc
from watchdog.archive import compact as cp
from watchdog.archive import manifest as mf
from watchdog.archive.buffer import Chunk, Item
from watchdog.archive.documents import keyer
from watchdog.archive.layout import EVENTS, FORMAT_KEY, day_of_epoch
from watchdog.archive.reader import ArchiveQuery
from watchdog.archive.report import subject_report
from watchdog.archive.store import Store, open_store
from watchdog.archive.verify import verify
from watchdog.archive.writer import ArchiveWriter


def _write(store: Store, events: list[Item], *, store_subjects: bool, every: int = 40) -> None:
    """Two daemon-like writers taking turns, a flush every ``every`` events."""
    writers = [ArchiveWriter(store, f"daemon-{c}", store_subjects=store_subjects)
               for c in "ab"]
    for n, i in enumerate(range(0, len(events), every)):
        w = writers[n % 2]
        part = events[i:i + every]
        if store_subjects:
            w.add_many(EVENTS, part)
        else:  # as the daemon hands a batch over: its subject ids not kept
            w.add_chunk(EVENTS, Chunk.of_columns([e[0] for e in part], [e[1] for e in part],
                                                 [e[2] for e in part], None))
        w.flush()


def _report(store: Store, subject: str) -> list[str]:
    q = ArchiveQuery(store)
    try:
        return [e["id"] for e in subject_report(q, subject, "p").events]
    finally:
        q.close()


def _scan(events: list[Item], subject: str) -> list[str]:
    """The input's events naming the subject, in the report's order (time, then id)."""
    return [e[0] for e in sorted((e for e in events if subject in e[3]),
                                 key=lambda e: (round(e[1] * 1e6), e[0]))]


def _formats(store: Store) -> Counter[bytes]:
    return Counter(pq.read_schema(store.path(s.path)).metadata[FORMAT_KEY]
                   for s in mf.contents(store).of(EVENTS))


@pytest.fixture
def world_events(world_dir: Path) -> list[Item]:
    return sorted(archive_items(world_dir / "events.jsonl"), key=lambda e: e[1])


def test_lean_segments_say_format_3_and_reports_equal_a_scan(
        world_events: list[Item], tmp_path: Path) -> None:
    lean = open_store(str(tmp_path / "lean"), create=True)
    _write(lean, world_events, store_subjects=False)
    formats = _formats(lean)
    assert set(formats) == {b"3"}
    assert sum(formats.values()) > 20
    seg = mf.contents(lean).of(EVENTS)[0]
    assert pq.read_table(lean.path(seg.path)).column("subject_ids").null_count == seg.rows
    named = Counter(s for e in world_events for s in e[3])
    rng = random.Random(7)
    subjects = [named.most_common(1)[0][0], *rng.sample(sorted(named), 8), "nobody"]
    for subject in subjects:
        assert _report(lean, subject) == _scan(world_events, subject), subject
    assert verify(lean).ok


def _escaped(i: int, subjects: list[str], text: bytes, escaped: bytes) -> bytes:
    raw = orjson.dumps(event_doc(id=f"x{i}", when=f"2026-11-02T10:{i:02d}:00Z",
                                 subject_ids=subjects, resource="crm.customers"))
    return raw.replace(text, escaped)


def test_escaped_ids_are_found_and_lookalikes_are_not(tmp_path: Path) -> None:
    """A JSON string may escape any character: the id's text is then not in the document. And
    a document that holds the id's text elsewhere does not name the subject."""
    docs = [
        _escaped(1, ["s-\u00e9"], "s-\u00e9".encode(), b"s-\\u00e9"),  # é written \u00e9
        _escaped(2, ["a/b"], b"a/b", b"a\\/b"),  # a solidus escaped
        _escaped(3, ["q\"t"], b"q\\\"t", b"q\\u0022t"),  # a quote, as \u0022
        _escaped(4, ["s-1"], b'"s-1"', b'"\\u0073-1"'),  # an ASCII letter escaped
        # the id's text in the resource, not in subject_ids
        _escaped(5, ["other"], b"crm.customers", b"s-1 a/b"),
        _escaped(6, ["s-1", "a/b"], b"", b""),
        # a key given twice: the decoder (the rules) takes its last value, DuckDB its first
        _escaped(7, ["dup-b"], b'"subject_ids":["dup-b"]',
                 b'"subject_ids":["dup-a"],"subject_ids":["dup-b"]'),
    ]
    key = keyer(EVENTS)
    events: list[Item] = []
    for raw in docs:
        k = key(raw)
        assert isinstance(k, tuple), k
        events.append((k[0], k[1], raw, k[2]))
    assert [e[3] for e in events[:4]] == [("s-\u00e9",), ("a/b",), ("q\"t",), ("s-1",)]
    for lean in (True, False):
        store = open_store(str(tmp_path / f"a-{lean}"), create=True)
        _write(store, events, store_subjects=not lean, every=2)
        for subject in ("s-\u00e9", "a/b", "q\"t", "s-1", "other", "s-", "dup-a", "dup-b"):
            assert _report(store, subject) == _scan(events, subject), (lean, subject)
        assert _report(store, "s-1") == ["x4", "x6"]
        assert _report(store, "dup-b") == ["x7"]


def test_compaction_stores_the_subject_ids_as_format_1(
        world_events: list[Item], tmp_path: Path) -> None:
    lean, full = (open_store(str(tmp_path / n), create=True) for n in ("lean", "full"))
    # a day of both formats: a writer storing them (an older daemon) first, then the lean
    # ones (which skip the ids it holds)
    old = ArchiveWriter(lean, "daemon-old")
    old.add_many(EVENTS, world_events[:4])
    old.flush()
    _write(lean, world_events, store_subjects=False)
    _write(full, world_events, store_subjects=True)
    first_day = min(s.day for s in mf.contents(lean).of(EVENTS))
    assert {pq.read_schema(lean.path(s.path)).metadata[FORMAT_KEY]
            for s in mf.contents(lean).of(EVENTS) if s.day == first_day} == {b"1", b"3"}
    named = Counter(s for e in world_events for s in e[3])
    subjects = [s for s, _n in named.most_common(5)]
    before = {s: _report(lean, s) for s in subjects}
    done = cp.compact(lean, "compact", grace_seconds=86_400, open_days=False)
    assert done
    after = mf.contents(lean)
    compacted = {p.day for p in done if p.dataset == EVENTS}
    for seg in after.of(EVENTS):
        table = pq.read_table(lean.path(seg.path))
        said = table.schema.metadata[FORMAT_KEY]
        assert said == (b"1" if seg.day in compacted else b"3")
        if seg.day in compacted:  # what a writer storing them would have stored
            assert table.column("subject_ids").null_count == 0
            stored = dict(zip(table.column("id").to_pylist(),
                              table.column("subject_ids").to_pylist(), strict=True))
            assert stored == {e[0]: list(e[3]) for e in world_events
                              if day_of_epoch(e[1]) == seg.day}
    for s in subjects:
        assert _report(lean, s) == before[s] == _report(full, s) == _scan(world_events, s)
    assert verify(lean).ok
    # the open days' tiers, merged: format 1 too, their stored ids the decoder's
    assert cp.compact(lean, "compact", grace_seconds=86_400)
    ids = {e[0]: list(e[3]) for e in world_events}
    merged = [s for s in mf.contents(lean).of(EVENTS)
              if s.day not in compacted and s.path.rsplit("/", 1)[1].startswith("compact-")]
    assert merged
    for seg in merged:
        table = pq.read_table(lean.path(seg.path))
        assert table.schema.metadata[FORMAT_KEY] == b"1"
        stored = dict(zip(table.column("id").to_pylist(),
                          table.column("subject_ids").to_pylist(), strict=True))
        assert stored == {i: ids[i] for i in stored}
    for s in subjects:
        assert _report(lean, s) == before[s]
    assert verify(lean).ok


def test_a_chunk_without_subject_ids_is_refused_by_a_writer_that_stores_them(
        tmp_path: Path) -> None:
    w = ArchiveWriter(open_store(str(tmp_path / "a"), create=True), "w")
    with pytest.raises(ValueError, match="without subject ids"):
        w.add_chunk(EVENTS, Chunk.of_columns(["e1"], [0.0], [b"{}"], None))
