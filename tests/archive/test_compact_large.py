"""Compaction of a partition larger than ``memory_rows``: sorted on local disk (DuckDB,
:mod:`watchdog.archive.spill`), with the same result as in memory: every id once (the copy
every query keeps), in (ts, id) order, in segments of ``segment_rows``; and as crash-safe."""

from __future__ import annotations

import hashlib
import itertools
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.archive.test_compact import _write_live
from watchdog.archive import compact as cp
from watchdog.archive import manifest as mf
from watchdog.archive import spill
from watchdog.archive.layout import EVENTS, SCHEMAS
from watchdog.archive.pending import pending_path
from watchdog.archive.segment import write_segment
from watchdog.archive.store import Store, open_store
from watchdog.archive.verify import verify


def _rows(store: Store, ds: str = EVENTS, day: str | None = None) -> list[dict[str, Any]]:
    """Every stored row of ``ds`` (of ``day``), segment by segment in path order (= written
    order)."""
    out: list[dict[str, Any]] = []
    for s in sorted(mf.contents(store).of(ds), key=lambda s: s.path):
        if day is not None and s.day != day:
            continue
        out += pq.read_table(store.path(s.path)).to_pylist()
    return out


@pytest.fixture
def spill_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the spill is made in (``TMPDIR``), to see it emptied."""
    d = tmp_path / "spill"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def test_a_partition_above_the_bound_compacts_on_disk_as_in_memory(
        world_dir: Path, tmp_path: Path, spill_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    live = _write_live(world_dir, tmp_path / "mem")
    shutil.copytree(tmp_path / "mem", tmp_path / "disk")
    mem, disk = live.store, open_store(str(tmp_path / "disk"))
    before = mf.contents(disk)
    day0 = min(s.day for s in before.of(EVENTS))
    ids_before = {i for s in before.of(EVENTS) if s.day == day0
                  for i in pq.read_table(disk.path(s.path), columns=["id"]).column("id")
                  .to_pylist()}
    spilled: list[int] = []
    real_add = spill.Spill.add

    def add(self: spill.Spill, table: pa.Table) -> None:
        spilled.append(len(table))
        real_add(self, table)

    monkeypatch.setattr(spill.Spill, "add", add)
    a = cp.compact(mem, "compact-t", segment_rows=300, grace_seconds=86_400)
    assert not spilled  # every partition under the default bound: in memory
    b = cp.compact(disk, "compact-t", segment_rows=300, grace_seconds=86_400, memory_rows=100)
    assert spilled
    assert sum(spilled) == sum(p.rows + p.duplicates for p in b
                               if p.rows + p.duplicates > 100)
    key = [(p.dataset, p.day, p.segments_before, p.segments_after, p.rows, p.duplicates)
           for p in a]
    assert key == [(p.dataset, p.day, p.segments_before, p.segments_after, p.rows,
                    p.duplicates) for p in b]
    first = next(p for p in b if (p.dataset, p.day) == (EVENTS, day0))
    assert first.duplicates == 2 * len(live.both)
    assert first.rows > 300
    assert first.segments_after == -(-first.rows // 300)
    rows = [r for r in _rows(disk) if r["ts"].strftime("%Y-%m-%d") == day0]
    assert len(rows) == first.rows
    assert {r["id"] for r in rows} == ids_before  # every id, once
    assert [(r["ts"], r["id"]) for r in rows] == sorted((r["ts"], r["id"]) for r in rows)
    for ds in SCHEMAS:  # the same rows, in the same segments, as compacted in memory
        assert _rows(disk, ds) == _rows(mem, ds), ds
    segs = sorted((s for s in mf.contents(disk).of(EVENTS) if s.day == day0),
                  key=lambda s: s.path)
    assert [s.rows for s in segs[:-1]] == [300] * (len(segs) - 1)
    assert all(x.last <= y.first for x, y in itertools.pairwise(segs))
    result = verify(disk)
    assert result.ok, result.problems
    assert result.copies == {}
    assert list(spill_dir.iterdir()) == []  # the spill is deleted


def _segment(store: Store, chain: mf.ManifestWriter, n: int,
             rows: list[tuple[str, int, str]], day: str = "2026-01-01") -> None:
    """A recorded access-events segment of (id, microseconds into ``day``, raw); the first
    of a chain also writes one event of two days later, so that ``day`` is closed."""
    if n == 1:
        _segment(store, chain, 99, [("later", 0, "{}")], "2026-01-03")
    t0 = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 1_000_000
    table = pa.table({"id": [r[0] for r in rows],
                      "ts": pa.array([t0 + r[1] for r in rows], pa.int64()).cast(
                          pa.timestamp("us", tz="UTC")),
                      "subject_ids": [["s"] for _ in rows], "raw": [r[2] for r in rows]},
                     schema=SCHEMAS[EVENTS])
    seg = write_segment(store, f"events/day={day}/hand-{n:012d}-0000.parquet", EVENTS, day,
                        table)
    chain.append("segments", segments=[seg.as_dict()])


def test_on_disk_keeps_the_copy_every_query_keeps(tmp_path: Path, spill_dir: Path) -> None:
    """Of an id stored several times: the earliest, then the smallest document."""
    store = open_store(str(tmp_path / "a"), create=True)
    chain = mf.ManifestWriter(store, "hand")
    _segment(store, chain, 1, [("b", 5, '{"v":2}'), ("a", 9, '{"v":1}'), ("c", 1, '{"v":1}')])
    _segment(store, chain, 2, [("b", 5, '{"v":1}'), ("a", 3, '{"v":3}'), ("d", 1, '{"v":1}')])
    _segment(store, chain, 3, [("b", 4, '{"v":9}'), ("a", 3, '{"v":4}')])
    done = cp.compact(store, "compact-t", memory_rows=2, min_segments=2)
    assert [(p.rows, p.duplicates, p.segments_after) for p in done] == [(4, 4, 1)]
    assert [(r["id"], r["ts"].microsecond, r["raw"]) for r in _rows(store, day="2026-01-01")] == [
        ("c", 1, '{"v":1}'), ("d", 1, '{"v":1}'), ("a", 3, '{"v":3}'), ("b", 4, '{"v":9}')]
    assert list(spill_dir.iterdir()) == []


def test_on_disk_a_damaged_segment_leaves_the_day_alone(tmp_path: Path,
                                                        spill_dir: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    chain = mf.ManifestWriter(store, "hand")
    for n in range(1, 4):
        _segment(store, chain, n, [(f"e{n}-{i}", i, "{}") for i in range(5)])
    bad = max((s for s in mf.contents(store).of(EVENTS) if s.day == "2026-01-01"),
              key=lambda s: s.path)
    data = bytearray(store.read_bytes(bad.path))
    data[40] ^= 0xFF
    store.write_bytes(bad.path, bytes(data))
    files = set(store.listdir("", recursive=True))
    done = cp.compact(store, "compact-t", memory_rows=5)
    assert len(done) == 1
    assert bad.path in (done[0].problem or "")
    assert set(store.listdir("", recursive=True)) == files  # nothing written
    assert hashlib.sha256(store.read_bytes(bad.path)).hexdigest() != bad.sha256
    assert list(spill_dir.iterdir()) == []


def test_on_disk_a_crash_before_the_entry_is_cleaned_by_a_rerun(
        tmp_path: Path, spill_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    chain = mf.ManifestWriter(store, "hand")
    for n in range(1, 5):
        _segment(store, chain, n, [(f"e{n}-{i}", n * 10 + i, "{}") for i in range(5)])
    before = mf.contents(store)
    files = set(store.listdir("", recursive=True))
    written: list[str] = []
    real = cp.write_segment  # type: ignore[attr-defined]

    def crash(store: Store, path: str, *args: Any) -> mf.Segment:
        if written:  # the second piece
            raise OSError("killed")
        written.append(path)
        return real(store, path, *args)

    monkeypatch.setattr(cp, "write_segment", crash)
    with pytest.raises(OSError, match="killed"):
        cp.compact(store, "compact-t", memory_rows=6, segment_rows=8)
    monkeypatch.undo()
    assert list(spill_dir.iterdir()) == []
    assert set(store.listdir("", recursive=True)) - files == {written[0],
                                                               pending_path("compact-t")}
    assert mf.contents(store).segments == before.segments
    assert verify(store).ok
    done = cp.compact(store, "compact-t", memory_rows=6, segment_rows=8)
    assert [(p.rows, p.segments_after) for p in done] == [(20, 3)]
    assert not store.exists(pending_path("compact-t"))
    assert [r["id"] for r in _rows(store, day="2026-01-01")] == [f"e{n}-{i}" for n in range(1, 5)
                                                for i in range(5)]
    result = verify(store)
    assert result.ok, result.problems
