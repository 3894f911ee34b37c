"""``verify`` beside what runs on a live archive: a daemon's flushes, the hourly compaction and
retention change the archive while it reads it, and none of that is named as a problem; what
they do not explain still is."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.archive.helpers import archive_items
from watchdog.archive import compact as cp
from watchdog.archive import manifest as mf
from watchdog.archive import verify as verify_module
from watchdog.archive.layout import EVENTS
from watchdog.archive.store import Store, open_store
from watchdog.archive.verify import verify
from watchdog.archive.writer import ArchiveWriter


def _writer_and_compactor(store: Store, world: Path, stop: threading.Event) -> list[Exception]:
    """A writer flushing every few events and a compactor merging tiers and closed days, both
    in a loop until ``stop``: what a live archive's daemon and hourly job do, faster."""
    items = sorted(archive_items(world / "events.jsonl", EVENTS), key=lambda i: i[1])
    errors: list[Exception] = []

    def write() -> None:
        w = ArchiveWriter(store, "daemon-1")
        try:
            for i in range(0, len(items), 3):
                if stop.is_set():
                    return
                w.add_many(EVENTS, items[i:i + 3])
                w.flush()
        except Exception as err:  # pragma: no cover - reported by the test
            errors.append(err)

    def merge() -> None:
        try:
            while not stop.is_set():
                cp.compact(store, "compact", grace_seconds=0)
                stop.wait(0.2)
        except Exception as err:  # pragma: no cover - reported by the test
            errors.append(err)

    for target in (write, merge):
        threading.Thread(target=target, daemon=True).start()
    return errors


def test_verify_beside_a_writer_and_a_compactor_names_nothing(world_dir: Path,
                                                              tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    stop = threading.Event()
    errors = _writer_and_compactor(store, world_dir, stop)
    try:
        while len(mf.heads(store)) < 2 and not errors:  # both have written an entry
            time.sleep(0.05)
        reports = [verify(store) for _ in range(8)]
    finally:
        stop.set()
    assert not errors, errors
    assert [r.problems for r in reports] == [[]] * 8
    assert sum(r.segments for r in reports) > 0
    compactions = [e for c in mf.contents(store).chains for e in c.entries
                   if e.get("op") == "compact"]
    assert compactions  # the check ran beside merges, not only flushes


def _flushed(world: Path, out: Path, events: int, every: int) -> Store:
    """The first ``events`` of the world, a flush every ``every``."""
    store = open_store(str(out), create=True)
    w = ArchiveWriter(store, "daemon-1")
    items = sorted(archive_items(world / "events.jsonl", EVENTS), key=lambda i: i[1])
    for i in range(0, events, every):
        w.add_many(EVENTS, items[i:i + every])
        w.flush()
    return store


def test_what_nothing_explains_is_still_named(world_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = _flushed(world_dir, tmp_path / "a", 120, 4)
    segs = sorted(mf.contents(store).segments)
    gone, stray = segs[0], segs[1].replace("daemon-1-", "daemon-9-")
    store.delete(gone)
    store.write_bytes(stray, store.read_bytes(segs[1]))
    waits: list[float] = []
    monkeypatch.setattr(verify_module.time, "sleep", waits.append)
    problems = verify(store, settle_seconds=5).problems
    assert waits == []  # no segment left behind: nothing waited for
    assert (f"segment {gone}: removed (recorded in manifest daemon-1 entry 1, not in the "
            "archive)") in problems
    assert f"segment {stray}: recorded in no manifest (slipped in)" in problems


def test_a_compaction_finishing_its_deletes_during_the_check_is_not_named(
        world_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _flushed(world_dir, tmp_path / "a", 80, 2)
    before = mf.contents(store).segments
    kept = {p: store.read_bytes(p) for p in before}
    assert cp.compact(store, "compact")  # 40 small segments of the open day: one tier, merged
    for path, data in kept.items():  # as if its deletes were still under way
        if not store.exists(path):
            store.write_bytes(path, data)
    named = verify(store, settle_seconds=0).problems
    assert len(named) == len(before)
    assert all("replaced by compaction" in p for p in named)

    waits: list[float] = []

    def finish(seconds: float) -> None:  # the compaction's deletes, done while verify waits
        waits.append(seconds)
        for path in kept:
            store.discard(path)

    monkeypatch.setattr(verify_module.time, "sleep", finish)
    assert verify(store, settle_seconds=10).problems == []
    assert waits == [1.0]  # it waited once, then found them gone
