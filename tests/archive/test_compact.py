"""Compaction: the small segments of closed partitions rewritten as one, every event kept once,
crash-safe, and followed by the live writers, ``verify`` and retention."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from tests.archive.helpers import archive_items
from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer
from watchdog.archive import compact as cp
from watchdog.archive import manifest as mf
from watchdog.archive.buffer import Item
from watchdog.archive.layout import ALERTS, DIRECTORY, EVENTS, SUBJECTS
from watchdog.archive.pending import pending_path
from watchdog.archive.reader import ArchiveQuery
from watchdog.archive.report import subject_report
from watchdog.archive.retention import prune
from watchdog.archive.store import Store, open_store
from watchdog.archive.verify import verify
from watchdog.archive.writer import ArchiveWriter
from watchdog.cli import main


def _items(path: Path, dataset: str) -> list[Item]:
    return sorted(archive_items(path, dataset), key=lambda i: i[1])


@dataclass
class Live:
    store: Store
    events: list[Item]
    both: list[Item]  # stored twice more (two writers flushing at the same moment)


def _write_live(world: Path, out: Path) -> Live:
    """Two daemon-like writers taking turns, a flush every 40 events (and a few for records
    and alerts), plus copies of 30 events of the first day stored by both."""
    store = open_store(str(out), create=True)
    events = _items(world / "events.jsonl", EVENTS)
    a, b = ArchiveWriter(store, "daemon-a"), ArchiveWriter(store, "daemon-b")
    for n, i in enumerate(range(0, len(events), 40)):
        w = a if n % 2 else b
        w.add_many(EVENTS, events[i:i + 40])
        w.flush()
    for ds, name in ((DIRECTORY, "directory"), (SUBJECTS, "subjects"), (ALERTS, "alerts")):
        docs = _items(world / f"{name}.jsonl", ds)
        for i in range(0, len(docs), max(1, len(docs) // 4)):
            a.add_many(ds, docs[i:i + max(1, len(docs) // 4)])
            a.flush()
    both = events[100:130]
    c, d = ArchiveWriter(store, "daemon-c"), ArchiveWriter(store, "daemon-d")
    # d's flush runs while c's does: neither sees the other's segment
    d._catch_up = lambda: None  # type: ignore[method-assign]
    for w in (c, d):
        w._seen.clear()
        w._seen[(EVENTS, int(both[0][1] // 86400))] = set()  # as if the day were new to both
        w.add_many(EVENTS, both)
        w.flush()
    return Live(store, events, both)


@pytest.fixture
def live(world_dir: Path, tmp_path: Path) -> Live:
    return _write_live(world_dir, tmp_path / "a")


def _parts(c: mf.Contents) -> Counter[tuple[str, str]]:
    return Counter((s.dataset, s.day) for s in c.segments.values())


def _ids(store: Store, c: mf.Contents, ds: str, day: str | None = None) -> list[str]:
    out: list[str] = []
    for s in c.of(ds):
        if day is None or s.day == day:
            out += pq.read_table(store.path(s.path), columns=["id"]).column("id").to_pylist()
    return out


def _report(store: Store, subject: str) -> list[dict[str, Any]]:
    q = ArchiveQuery(store)
    try:
        return subject_report(q, subject, Pseudonymizer(DEMO_KEY)(subject)).events
    finally:
        q.close()


def _busiest(events: list[Item]) -> str:
    named: Counter[str] = Counter(s for it in events for s in it[3])
    return named.most_common(1)[0][0]


def test_closed_partitions_become_one_segment_with_the_same_events(live: Live) -> None:
    store = live.store
    before = mf.contents(store)
    parts = _parts(before)
    days = sorted(d for ds, d in parts if ds == EVENTS)
    assert len(days) >= 3
    assert parts[(EVENTS, days[0])] > 5
    subject = _busiest(live.events)
    report = _report(store, subject)
    assert report
    ids_before = {key: _ids(store, before, *key) for key in parts}
    all_before = {ds: set(_ids(store, before, ds)) for ds in (EVENTS, DIRECTORY, SUBJECTS, ALERTS)}
    assert cp.uncompacted(before)[EVENTS] == 1  # the first day: closed 2 days before the last
    done = cp.compact(store, "compact-t", grace_seconds=86_400, open_days=False)
    after = mf.contents(store)
    assert cp.uncompacted(after) == {}
    # the last two days are open (they end less than a day before the latest event): untouched
    latest = max(s.last for s in before.of(EVENTS))
    cutoff = datetime.fromisoformat(latest) - timedelta(days=1)
    open_days = [d for d in days
                 if datetime.fromisoformat(d).replace(tzinfo=UTC) + timedelta(days=1) > cutoff]
    assert len(open_days) == 2
    assert open_days == days[-2:]
    for last in open_days:
        assert {p for p, s in after.segments.items() if (s.dataset, s.day) == (EVENTS, last)} \
            == {p for p, s in before.segments.items() if (s.dataset, s.day) == (EVENTS, last)}
        assert (EVENTS, last) not in {(p.dataset, p.day) for p in done}
    for ds, day in parts:
        if (ds in (EVENTS, ALERTS) and day in open_days) or parts[(ds, day)] < 2:
            continue
        assert _parts(after)[(ds, day)] == 1, (ds, day)
        stored = _ids(store, after, ds, day)
        assert sorted(stored) == sorted(set(ids_before[(ds, day)]))  # once each
    for ds, ids in all_before.items():
        assert set(_ids(store, after, ds)) == ids, ds
    first = next(p for p in done if (p.dataset, p.day) == (EVENTS, days[0]))
    assert first.duplicates == 2 * len(live.both)  # the copies were of the first day
    assert first.rows == len([e for e in live.events if e[1] // 86400 == live.both[0][1] // 86400])
    assert sum(p.rows + p.duplicates for p in done) == sum(
        s.rows for s in before.segments.values() if (s.dataset, s.day) in
        {(p.dataset, p.day) for p in done})
    rows = pq.read_table(store.path(after.of(EVENTS)[0].path)).to_pydict()
    assert list(zip(rows["ts"], rows["id"], strict=True)) == sorted(
        zip(rows["ts"], rows["id"], strict=True))
    assert _report(store, subject) == report
    result = verify(store)
    assert result.ok, result.problems
    assert result.copies == {}
    # nothing left to do: a second run compacts nothing and changes nothing
    assert cp.compact(store, "compact-t", grace_seconds=86_400, open_days=False) == []
    assert _parts(mf.contents(store)) == _parts(after)


def test_a_compacted_segment_is_compacted_again_with_late_ones(live: Live) -> None:
    store = live.store
    cp.compact(store, "compact-t")
    day0 = live.events[0]
    # a late event of the first (closed, compacted) day, and a redelivered one
    late = (day0[0] + "-late", day0[1] + 1, day0[2].replace(day0[0].encode(),
                                                            (day0[0] + "-late").encode()), day0[3])
    w = ArchiveWriter(store, "daemon-e")
    assert w.add_many(EVENTS, [late, day0]) == 1
    w.flush()
    day = mf.contents(store).of(EVENTS)[0].day
    assert _parts(mf.contents(store))[(EVENTS, day)] == 2
    again = cp.compact(store, "compact-t")
    assert [(p.dataset, p.day, p.segments_before, p.segments_after) for p in again] == [
        (EVENTS, day, 2, 1)]
    c = mf.contents(store)
    assert _parts(c)[(EVENTS, day)] == 1
    assert late[0] in _ids(store, c, EVENTS, day)
    assert verify(store).ok


def test_a_day_above_segment_rows_is_split_and_not_rewritten_again(live: Live) -> None:
    store = live.store
    before = _parts(mf.contents(store))
    day = min(d for ds, d in before if ds == EVENTS)
    done = cp.compact(store, "compact-t", segment_rows=500)
    first = next(p for p in done if p.partition == f"events/day={day}")
    assert first.segments_after == -(-first.rows // 500)
    assert first.segments_after > 1
    segs = [s for s in mf.contents(store).of(EVENTS) if s.day == day]
    assert sorted(s.rows for s in segs)[1:] == [500] * (len(segs) - 1)
    assert all(a.last <= b.first for a, b in itertools.pairwise(segs))  # in time order
    assert cp.compact(store, "compact-t", segment_rows=500) == []
    assert verify(store).ok


def test_verify_names_a_changed_or_removed_compacted_segment(live: Live) -> None:
    store = live.store
    cp.compact(store, "compact-t")
    c = mf.contents(store)
    seg = c.of(EVENTS)[0]  # the first day's, compacted
    assert seg.path.split("/")[-1].startswith("compact-t-")
    data = bytearray(store.read_bytes(seg.path))
    data[50] ^= 0xFF
    store.write_bytes(seg.path, bytes(data))
    assert any(f"segment {seg.path}: changed" in p for p in verify(store).problems)
    # and a compaction refuses to launder it into a freshly hashed segment
    w = ArchiveWriter(store, "daemon-e")
    late = live.events[0]
    w._seen[(EVENTS, int(late[1] // 86400))] = set()
    w.add_many(EVENTS, [late])
    w.flush()
    again = cp.compact(store, "compact-t")
    bad = [p for p in again if p.problem]
    assert bad
    assert seg.path in (bad[0].problem or "")
    assert store.exists(seg.path)
    store.delete(seg.path)
    problems = verify(store).problems
    assert any(f"segment {seg.path}: removed (recorded in manifest compact-t entry" in p
               for p in problems), problems


def test_a_crash_between_entry_and_deletion_is_cleaned_by_a_rerun(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    store = live.store

    def crash(_store: Store, _rel: str) -> None:
        raise OSError("killed")

    monkeypatch.setattr(Store, "discard", crash)  # the deletes of the replaced segments
    with pytest.raises(OSError, match="killed"):
        cp.compact(store, "compact-t")
    monkeypatch.undo()
    c = mf.contents(store)
    assert c.compacted  # recorded
    left = [p for p in c.compacted if store.exists(p)]
    assert left
    problems = verify(store, settle_seconds=0).problems  # (not waited for: a crash left them)
    assert any(f"segment {left[0]}: replaced by compaction (manifest compact-t entry 1) but "
               "still present" in p for p in problems), problems
    cp.compact(store, "compact-t")
    assert not [p for p in c.compacted if store.exists(p)]
    assert verify(store).ok


def test_a_crash_between_segments_and_entry_is_cleaned_by_a_rerun(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    store = live.store
    before = mf.contents(store)
    files = set(store.listdir("", recursive=True))
    real = mf.ManifestWriter.append

    def crash(self: mf.ManifestWriter, op: str, **fields: Any) -> dict[str, Any]:
        if op == "compact":
            raise OSError("killed")
        return real(self, op, **fields)

    monkeypatch.setattr(mf.ManifestWriter, "append", crash)
    with pytest.raises(OSError, match="killed"):
        cp.compact(store, "compact-t")
    monkeypatch.undo()
    orphans = {f for f in set(store.listdir("", recursive=True)) - files
               if f.endswith(".parquet")}
    assert len(orphans) == 1
    assert store.exists(pending_path("compact-t"))
    assert mf.contents(store).segments == before.segments  # nothing recorded
    assert verify(store).ok  # a pending compaction's files are not tampering
    # the re-run deletes them (before writing its own under the same names)
    dropped: list[str] = []
    real_delete = Store.delete

    def spy(self: Store, rel: str) -> None:
        dropped.append(rel)
        real_delete(self, rel)

    monkeypatch.setattr(Store, "delete", spy)
    assert cp.compact(store, "compact-t")
    assert dropped[0] == next(iter(orphans))
    assert not store.exists(pending_path("compact-t"))
    result = verify(store)
    assert result.ok, result.problems


def test_compaction_then_retention(live: Live) -> None:
    store = live.store
    cp.compact(store, "compact-t")
    days = sorted({s.day for s in mf.contents(store).of(EVENTS)})
    dropped = prune(store, "prune-t", 1)
    assert f"{EVENTS}/{days[0]}" in dropped
    c = mf.contents(store)
    assert days[0] not in {s.day for s in c.of(EVENTS)}
    assert not store.listdir(f"{EVENTS}/day={days[0]}")
    result = verify(store)
    assert result.ok, result.problems


def test_a_writer_does_not_store_again_what_compaction_moved(live: Live) -> None:
    store = live.store
    old = live.events[0]
    day = (EVENTS, int(old[1] // 86400))
    w = ArchiveWriter(store, "daemon-a")  # reads the contents now, before the compaction
    cached = ArchiveWriter(store, "daemon-b")
    assert cached.add_many(EVENTS, [live.events[1]]) == 0  # its day's ids loaded and kept
    cp.compact(store, "compact-t")
    # the segments w's contents name are gone: it reads the contents again, not nothing
    assert w.add_many(EVENTS, [old]) == 0
    assert w.add(EVENTS, old[0], old[1], old[2], old[3]) is False
    assert w.flush() == []
    assert day in w._seen
    # the writer that had the day cached follows the compaction's entry at its next flush
    new = (old[0] + "-new", old[1], old[2].replace(old[0].encode(), (old[0] + "-new").encode()),
           old[3])
    assert cached.add_many(EVENTS, [new]) == 1
    cached.flush()
    c = cached._contents
    assert not set(c.segments) & set(mf.contents(store).compacted)
    assert set(c.segments) == set(mf.contents(store).segments)
    stored = Counter(_ids(store, mf.contents(store), EVENTS))
    assert stored[old[0]] == 1
    assert stored[new[0]] == 1
    assert verify(store).ok


def test_contents_applies_compactions_in_any_order() -> None:
    def seg(path: str) -> dict[str, Any]:
        return mf.Segment(path, EVENTS, "2026-01-01", 1, 1, "0" * 64, "a", "b").as_dict()

    entries = [{"op": "segments", "segments": [seg("s1"), seg("s2")]},
               {"op": "compact", "segments": [seg("c1")], "replaces": [seg("s1"), seg("s2")]},
               {"op": "segments", "segments": [seg("s3")]},
               {"op": "compact", "segments": [seg("c2")], "replaces": [seg("c1"), seg("s3")]},
               {"op": "drop", "segments": [seg("c2")]}]
    for order in (entries, entries[::-1], entries[2:] + entries[:2]):
        out = mf.Contents()
        mf.apply(out, order)
        assert out.segments == {}
        assert set(out.compacted) == {"s1", "s2", "s3", "c1"}
        assert set(out.dropped) == {"c2"}
    out = mf.Contents()
    mf.apply(out, entries[:4])
    assert set(out.segments) == {"c2"}
    mf.apply(out, entries[:2])  # seeded, then entries again: nothing replaced comes back
    assert set(out.segments) == {"c2"}


def test_cli(live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = live.store.uri
    n = _parts(mf.contents(live.store))
    assert main(["archive", "compact", archive]) == 0
    out = capsys.readouterr().out.splitlines()
    day = min(d for ds, d in n if ds == EVENTS)
    line = next(x for x in out if x.startswith(f"events/day={day}: "))
    assert line.startswith(f"events/day={day}: {n[(EVENTS, day)]:,} segments -> 1 (")
    assert line.endswith(f" rows, {2 * len(live.both)} repeated ids dropped)")
    assert main(["archive", "compact", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"watchdog: error: {tmp_path / 'nowhere'}: {tmp_path / 'nowhere'}: "
                   "no such archive directory"]


def test_a_writer_catching_up_on_a_compacted_segment_reads_the_day_again(live: Live) -> None:
    store = live.store
    old = live.events[0]
    a = ArchiveWriter(store, "daemon-a")
    assert a.add_many(EVENTS, [live.events[1]]) == 0  # a holds the first day's ids
    # b archives an event of that day that a has not seen; a compaction then replaces b's
    # segment before a has read b's entry
    b = ArchiveWriter(store, "daemon-b")
    late = (old[0] + "-late", old[1], old[2].replace(old[0].encode(),
                                                     (old[0] + "-late").encode()), old[3])
    assert b.add_many(EVENTS, [late]) == 1
    (seg,) = b.flush()
    cp.compact(store, "compact-t")
    assert not store.exists(seg.path)
    # the same event redelivered to a: not known yet, buffered; at the flush a reads b's
    # entry, cannot read its segment, reads the day again from the compacted segment
    assert a.add_many(EVENTS, [late]) == 1
    assert a.flush() == []
    assert a.duplicates >= 1
    assert Counter(_ids(store, mf.contents(store), EVENTS))[late[0]] == 1
    result = verify(store)
    assert result.ok, result.problems
    assert result.copies == {}


def test_cli_names_a_damaged_partition_and_fails(live: Live,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    store = live.store
    victim = mf.contents(store).of(EVENTS)[0]
    store.delete(victim.path)
    assert main(["archive", "compact", store.uri]) == 1
    out = capsys.readouterr()
    assert (f"events/day={victim.day}: not compacted: segment {victim.path} is missing "
            "(run archive verify)") in out.out.splitlines()
    assert "1 left alone (damaged: run archive verify)" in out.err
    # the other closed partitions were compacted
    assert any(line.startswith("events/day=") and "-> 1 (" in line
               for line in out.out.splitlines())


def test_replay_of_a_compacted_live_archive_gives_the_alerts_of_the_files(
        live: Live, world_dir: Path, tmp_path: Path) -> None:
    """What `replay --archive` promises (the alerts of a replay of the original files) holds
    for an archive written as daemons write it, copies included, once compacted."""
    done = cp.compact(live.store, "compact-t", grace_seconds=0)
    assert {p.dataset for p in done} >= {EVENTS, ALERTS}
    out = tmp_path / "from-archive.jsonl"
    assert main(["replay", "--archive", live.store.base, "--policy",
                 str(world_dir / "policy.yaml"), "--out", str(out)]) == 0

    def alerts(path: Path) -> list[str]:
        docs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        for d in docs:
            d.pop("detected_at", None)
        return sorted(orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode() for d in docs)

    expected = alerts(world_dir / "alerts.jsonl")
    assert expected
    assert alerts(out) == expected
