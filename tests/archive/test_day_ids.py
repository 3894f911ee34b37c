"""The ids of a day's segments, as a writer loads them when it first touches the day: small
segments read whole (several at a time on S3), large ones by their ``id`` column; a segment
gone is named, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.archive.helpers import archive_items
from watchdog.archive import day_ids
from watchdog.archive import manifest as mf
from watchdog.archive.buffer import Item
from watchdog.archive.layout import EVENTS
from watchdog.archive.store import Store, open_store
from watchdog.archive.writer import ArchiveWriter


def _archive(world_dir: Path, tmp_path: Path) -> tuple[Store, list[Item]]:
    store = open_store(str(tmp_path / "a"), create=True)
    events = sorted(archive_items(world_dir / "events.jsonl"), key=lambda e: e[1])
    w = ArchiveWriter(store, "daemon", store_subjects=False)
    for i in range(0, len(events), 50):
        w.add_many(EVENTS, events[i:i + 50])
        w.flush()
    return store, events


@pytest.mark.parametrize("whole_bytes", [0, day_ids.WHOLE_BYTES])  # every one large / small
def test_the_ids_of_every_segment_and_the_missing_named(
        world_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        whole_bytes: int) -> None:
    monkeypatch.setattr(day_ids, "WHOLE_BYTES", whole_bytes)
    store, events = _archive(world_dir, tmp_path)
    segs = mf.contents(store).of(EVENTS)
    day = segs[0].day
    mine = [s for s in segs if s.day == day]
    assert len(mine) > 10
    gone = mine[3]
    store.delete(gone.path)
    ids, missing = day_ids.segment_ids(store, mine)
    assert missing == [gone.path]
    assert ids <= {e[0] for e in events}
    assert len(ids) == sum(s.rows for s in mine if s is not gone)


def test_a_writer_restarted_late_in_the_day_stores_no_event_twice(
        world_dir: Path, tmp_path: Path) -> None:
    store, events = _archive(world_dir, tmp_path)
    again = ArchiveWriter(store, "daemon", store_subjects=False)  # a restart: nothing cached
    assert again.add_many(EVENTS, events[-500:]) == 0
    assert again.duplicates == 500
