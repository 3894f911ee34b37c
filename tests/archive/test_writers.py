"""Several writers of one archive (daemon instances of a consumer group): a redelivered event
is stored once when the instances flush one after the other, and read once when they flushed
it at the same moment (then ``verify`` counts the copies)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.archive.helpers import archive_items
from watchdog.archive.buffer import Item
from watchdog.archive.layout import EVENTS
from watchdog.archive.manifest import contents
from watchdog.archive.reader import ArchiveQuery
from watchdog.archive.store import Store, open_store
from watchdog.archive.verify import verify
from watchdog.archive.writer import ArchiveWriter
from watchdog.cli import main


def _stored(store: Store) -> Counter[str]:
    ids: Counter[str] = Counter()
    for seg in contents(store).of(EVENTS):
        ids.update(pq.read_table(store.path(seg.path), columns=["id"]).column("id").to_pylist())
    return ids


@pytest.fixture
def items(world_dir: Path) -> list[Item]:
    return archive_items(world_dir / "events.jsonl")


def test_a_redelivery_after_a_rebalance_is_not_stored_again(items: list[Item],
                                                            tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    a, b = ArchiveWriter(store, "daemon-a"), ArchiveWriter(store, "daemon-b")
    first, moved, later = items[:100], items[100:400], items[400:500]
    # b holds the day already (its own partitions), so it does not read the day again
    b.add_many(EVENTS, first)
    b.flush()
    # a archives a partition's events, then loses the partition before committing them
    a.add_many(EVENTS, moved)
    a.flush()
    # b gets the partition and reads the same events again, and new ones
    assert b.add_many(EVENTS, moved + later) == len(moved) + len(later)  # not known yet
    written = b.flush()
    assert sum(s.rows for s in written) == len(later)
    assert b.duplicates == len(moved)
    stored = _stored(store)
    assert not [i for i, n in stored.items() if n > 1]
    assert set(stored) == {i[0] for i in items[:500]}
    report = verify(store)
    assert report.ok, report.problems
    assert report.copies == {}


def test_copies_written_at_the_same_moment_are_read_once(
        items: list[Item], world_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a"
    store = open_store(str(out), create=True)
    a, b = ArchiveWriter(store, "daemon-a"), ArchiveWriter(store, "daemon-b")
    both = items[:300]
    a.add_many(EVENTS, items)
    b.add_many(EVENTS, both)
    # b's flush runs while a's does: neither sees the other's segments
    b._catch_up = lambda: None  # type: ignore[method-assign]
    a.flush()
    b.flush()
    stored = _stored(store)
    assert sum(n - 1 for n in stored.values()) == len(both)  # the copies are there
    report = verify(store)
    assert report.ok, report.problems
    assert report.copies == {EVENTS: len(both)}
    assert main(["archive", "verify", str(out)]) == 0
    assert f"{len(both)} events row(s) repeat an id" in capsys.readouterr().err
    q = ArchiveQuery(store)
    total, distinct = q.sql("SELECT count(*), count(DISTINCT id) FROM events")[0]
    q.close()
    assert total == distinct == len(items)
    # the report lists each event naming the subject once, as the input names it
    named: Counter[str] = Counter()
    for _id, _t, _raw, subjects in items:
        named.update(subjects)
    subject = next(s for s, _n in named.most_common() if any(
        s in it[3] for it in both))
    capsys.readouterr()
    assert main(["subject-report", "--archive", str(out), "--subject", subject, "--json",
                 "--audit", str(tmp_path / "audit.jsonl")]) == 0
    ids = [json.loads(x)["event_id"] for x in capsys.readouterr().out.splitlines()]
    assert sorted(ids) == sorted(it[0] for it in items if subject in it[3])
