"""Manifest checkpoints: opening an archive reads the entries since the newest checkpoint, and
says what reading every chain says; a checkpoint that lies is named by ``verify`` and not
followed where its chains contradict it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.archive.helpers import archive_items
from watchdog.archive import checkpoint
from watchdog.archive import manifest as mf
from watchdog.archive.buffer import Item
from watchdog.archive.layout import EVENTS
from watchdog.archive.retention import prune
from watchdog.archive.store import Store, open_store
from watchdog.archive.verify import verify
from watchdog.archive.writer import ArchiveWriter


@pytest.fixture
def items(world_dir: Path) -> list[Item]:
    # every 20th: the 3 days of the world, for retention
    return archive_items(world_dir / "events.jsonl")[::20]


def _flushes(w: ArchiveWriter, items: list[Item], n: int, size: int = 20) -> None:
    for i in range(n):
        w.add_many(EVENTS, items[i * size:(i + 1) * size])
        w.flush()


class _Counting:
    """Counts the objects read (what a checkpoint saves: an S3 request each)."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        read = Store.read_bytes

        def counted(st: Store, rel: str) -> bytes:
            self.reads += st is store
            return read(st, rel)

        monkeypatch.setattr(Store, "read_bytes", counted)


def test_a_writer_checkpoints_and_readers_start_there(items: list[Item], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    a = ArchiveWriter(store, "daemon-a", checkpoint_every=5)
    b = ArchiveWriter(store, "daemon-b", checkpoint_every=5)
    _flushes(a, items, 12)
    _flushes(b, items[240:], 3)
    assert len(store.listdir(checkpoint.CHECKPOINT_DIR)) == 2  # a's 5th and 10th flush
    full, seeded = mf.contents(store), checkpoint.contents(store)
    assert seeded.segments == full.segments
    assert len(full.segments) >= 15
    assert checkpoint.since(seeded) == 2 + 3  # a's entries 11-12 and b's 3, not all 15
    assert {c.writer: c.tip for c in seeded.chains} == {c.writer: c.tip for c in full.chains}
    counting = _Counting(store, monkeypatch)
    checkpoint.contents(store)
    # the checkpoint, the heads, each tip read back, 5 entries and one miss per chain
    assert counting.reads <= 1 + 2 + 2 + 5 + 2
    counting.reads = 0
    mf.contents(store)
    assert counting.reads >= 15
    assert verify(store).ok
    # a writer opened now continues the chain from its head, not a read of every entry
    counting.reads = 0
    assert mf.ManifestWriter(store, "daemon-a").seq == 12
    assert counting.reads <= 3
    again = ArchiveWriter(store, "daemon-a")
    assert again.add_many(EVENTS, items[:20]) == 0  # its own first flush's ids are known


def test_a_drop_after_the_checkpoint_and_a_drop_read_before_its_segment(
        items: list[Item], tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    a = ArchiveWriter(store, "daemon-a")
    _flushes(a, items[::10], 3)  # the world's 3 days
    checkpoint.write(store, checkpoint.contents(store), "test")
    assert prune(store, "pruner", 1)  # every day but the newest is older than a day
    full, seeded = mf.contents(store), checkpoint.contents(store)
    assert seeded.segments == full.segments
    assert seeded.segments
    # a checkpoint made while reading chain A before, and chain B after, B's drop of a
    # segment A recorded meanwhile: the segment must stay dropped when A's entry is read
    b = ArchiveWriter(store, "daemon-b")
    _flushes(b, items[300:], 1)
    new = next(s for s in mf.contents(store).segments.values() if "daemon-b" in s.path)
    mf.ManifestWriter(store, "late-drop").append("drop", segments=[new.as_dict()],
                                                 reason="test")
    raced = mf.Contents()
    raced.chains = [c for c in mf.contents(store).chains if c.writer != "daemon-b"]
    raced.chains.append(mf.Chain("daemon-b"))  # read before its first entry
    mf.apply(raced, [e for c in raced.chains for e in c.entries])
    assert raced.unmatched == {new.path}
    checkpoint.write(store, raced, "test")
    assert new.path not in checkpoint.contents(store).segments
    assert checkpoint.contents(store).segments == mf.contents(store).segments


def test_a_checkpoint_that_lies_is_named_and_not_followed(items: list[Item], tmp_path: Path
                                                          ) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    a = ArchiveWriter(store, "daemon-a")
    _flushes(a, items, 4)
    path = checkpoint.write(store, checkpoint.contents(store), "test")
    doc = orjson.loads(store.read_bytes(path))
    hidden = doc["segments"].pop(0)["path"]  # a segment hidden from every reader
    doc["hash"] = checkpoint._digest(doc)
    store.write_bytes(path, orjson.dumps(doc))
    report = verify(store)
    assert any("omits 1 live segment" in p and hidden in p for p in report.problems)
    # a checkpoint whose bytes changed is not read; the chains are
    store.write_bytes(path, store.read_bytes(path).replace(b'"rows":20', b'"rows":21', 1))
    assert hidden in checkpoint.contents(store).segments
    assert any("not a checkpoint, or changed" in p for p in verify(store).problems)


def test_a_changed_entry_after_the_checkpoint_sends_readers_to_the_chains(
        items: list[Item], tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    a = ArchiveWriter(store, "daemon-a")
    _flushes(a, items, 2)
    checkpoint.write(store, checkpoint.contents(store), "test")
    _flushes(a, items[40:], 2)
    rel = mf.entry_path("daemon-a", 3)
    store.write_bytes(rel, store.read_bytes(rel).replace(b'"rows":20', b'"rows":2', 1))
    c = checkpoint.contents(store)
    assert c.chains
    assert any(ch.problems for ch in c.chains)


def test_the_manifest_writer_continues_after_a_crash_before_its_head(items: list[Item],
                                                                    tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    a = ArchiveWriter(store, "daemon-a")
    _flushes(a, items, 2)
    head = store.read_bytes(mf.head_path("daemon-a"))
    _flushes(a, items[40:], 1)
    store.write_bytes(mf.head_path("daemon-a"), head)  # the crash: entry 3, head still 2
    w = mf.ManifestWriter(store, "daemon-a")
    assert (w.seq, w.prev) == mf.read_chain(store, "daemon-a").tip
    assert w.seq == 3
