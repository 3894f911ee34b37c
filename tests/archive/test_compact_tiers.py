"""Compaction of the open day by size tier (:func:`watchdog.archive.compact.due`): a daemon's
flushes merged while the day still grows, each event rewritten a bounded number of times."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.archive.helpers import archive_items
from watchdog.archive import compact as cp
from watchdog.archive import manifest as mf
from watchdog.archive.buffer import Chunk, Item
from watchdog.archive.layout import EVENTS
from watchdog.archive.reader import ArchiveQuery
from watchdog.archive.store import Store, open_store
from watchdog.archive.verify import verify
from watchdog.archive.writer import ArchiveWriter

_DAY = 86_400


def _last_day(world: Path) -> list[Item]:
    items = sorted(archive_items(world / "events.jsonl", EVENTS), key=lambda i: i[1])
    last = int(items[-1][1] // _DAY)
    return [i for i in items if int(i[1] // _DAY) == last]


def _flush(w: ArchiveWriter, items: list[Item]) -> None:
    # as the daemon's sink hands a batch over (format 3, the default)
    w.add_chunk(EVENTS, Chunk.of_columns([i[0] for i in items], [i[1] for i in items],
                                         [i[2] for i in items], None))
    w.flush()


def _day_segments(store: Store) -> dict[str, mf.Segment]:
    return {p: s for p, s in mf.contents(store).segments.items() if s.dataset == EVENTS}


def _stored(store: Store) -> list[tuple[str, tuple[str, ...]]]:
    """Each archived event once, with its subject ids, as every query reads them."""
    q = ArchiveQuery(store)
    try:
        return sorted((i, tuple(s)) for i, s in q.sql("SELECT id, subject_ids FROM events"))
    finally:
        q.close()


def test_an_open_day_is_merged_tier_by_tier(world_dir: Path, tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    items = _last_day(world_dir)
    assert len(items) > 300
    w = ArchiveWriter(store, "daemon-a", store_subjects=False)
    for i in range(0, 80, 2):  # 40 flushes of 2 events: tier 0 (1-15 rows)
        _flush(w, items[i:i + 2])
    bigger = set()
    for i in range(80, 170, 30):  # 3 flushes of 30: tier 1 (16-255 rows)
        _flush(w, items[i:i + 30])
        bigger |= {p for p, s in _day_segments(store).items() if s.rows == 30}
    before = _stored(store)
    late = ArchiveWriter(store, "daemon-b", store_subjects=False)  # contents read before

    done = cp.compact(store, "compact-t")

    assert [(p.dataset, p.segments_before, p.segments_after, p.rows, p.duplicates)
            for p in done] == [(EVENTS, 40, 1, 80, 0)]
    segs = _day_segments(store)
    assert len(segs) == 4
    assert bigger < set(segs)  # the other tier untouched
    assert sorted(s.rows for s in segs.values()) == [30, 30, 30, 80]
    assert _stored(store) == before
    assert [(i, s) for i, s in before if s] == [
        (i[0], i[3]) for i in sorted(items[:170]) if i[3]]  # the ids stored, as the decoder reads
    assert verify(store).ok
    assert cp.compact(store, "compact-t") == []  # tier 1 holds 4: nothing due

    # a writer whose contents name the merged segments, and the one that wrote them: neither
    # stores again an event they hold
    assert late.add_many(EVENTS, [items[0], items[100]]) == 0
    _flush(w, items[0:2] + items[170:172])
    assert w.pending == 0
    for i in range(172, 204, 2):  # 16 more small flushes (with the one above: 17 in tier 0)
        _flush(w, items[i:i + 2])
    again = cp.compact(store, "compact-t")
    assert [(p.segments_before, p.rows) for p in again] == [(17, 34)]
    assert len(_day_segments(store)) == 5
    ids = Counter(i for i, _s in _stored(store))
    assert set(ids) == {i[0] for i in items[:204]}
    assert verify(store).ok

    # the day closes (an event two hours into the next): one segment, each id once
    nxt = items[-1]
    doc = orjson.loads(nxt[2])
    doc["event"]["id"] = "next-day"
    t = (int(nxt[1] // _DAY) + 1) * _DAY + 7200
    doc["@timestamp"] = datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
    _flush(w, [("next-day", float(t), orjson.dumps(doc), ())])
    closed = cp.compact(store, "compact-t")
    assert [(p.day, p.segments_before, p.segments_after, p.rows) for p in closed] == [
        (mf.contents(store).of(EVENTS)[0].day, 5, 1, 204)]
    assert verify(store).ok


def _seg(n: int, rows: int) -> mf.Segment:
    return mf.Segment(f"events/day=2026-01-01/s-{n:06d}.parquet", EVENTS, "2026-01-01", rows,
                      1, "0" * 64, "2026-01-01T00:00:00Z", "2026-01-01T12:00:00Z")


@settings(max_examples=60, deadline=None)
@given(flushes=st.lists(st.integers(1, 3_000), min_size=1, max_size=600),
       every=st.integers(1, 60), segment_rows=st.sampled_from([5_000, 200_000]))
def test_tiers_bound_an_open_days_segments_and_rewrites(flushes: list[int], every: int,
                                                        segment_rows: int) -> None:
    """Flushes of random sizes, a compaction every ``every`` flushes, merges done as
    :func:`.compact.compact` does them (in time order, cut into ``segment_rows`` pieces), each
    row's rewrites counted: after each run no tier holds :data:`TIER` segments, and no row was
    rewritten more than once per tier and once more (a merge's last, partial piece)."""
    c = mf.Contents()
    rewrites: dict[str, np.ndarray] = {}  # per segment, per row: times rewritten
    tiers = (segment_rows - 1).bit_length() // 4 + 1
    n = 0
    for k, rows in enumerate(flushes):
        n += 1
        seg = _seg(n, rows)
        c.segments[seg.path] = seg
        rewrites[seg.path] = np.zeros(rows, np.int16)
        if (k + 1) % every:
            continue
        for picked in cp.due(c, 3600.0, 2, segment_rows).values():
            merged = np.concatenate([rewrites.pop(s.path) for s in picked]) + 1
            for s in picked:
                del c.segments[s.path]
            for a in range(0, len(merged), segment_rows):
                n += 1
                piece = merged[a:a + segment_rows]
                seg = _seg(n, len(piece))
                c.segments[seg.path] = seg
                rewrites[seg.path] = piece
        by_tier = Counter((max(s.rows, 1).bit_length() - 1) // 4
                          for s in c.segments.values() if s.rows < segment_rows)
        assert max(by_tier.values(), default=0) < cp.TIER
        assert sum(by_tier.values()) < cp.TIER * tiers
    counts = np.concatenate(list(rewrites.values()))
    assert len(counts) == sum(flushes)
    assert counts.max() <= tiers + 1


def test_uncompacted_counts_closed_days_only() -> None:
    c = mf.Contents()
    for n in range(40):  # one open day of 40 small segments: due by tier, not "uncompacted"
        seg = _seg(n, 3)
        c.segments[seg.path] = seg
    assert cp.uncompacted(c) == {}
    assert len(cp.due(c, 3600.0, 2)[(EVENTS, "2026-01-01")]) == 40
    assert cp.due(c, 3600.0, 2, open_days=False) == {}
