"""The pending marker read one way by the writer and by ``verify``: a damaged one names
nothing, is deleted by the writer (which starts, rather than stall the daemon's archive), and
the file it may have covered is named by ``verify`` as not recorded."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from watchdog.archive.layout import EVENTS
from watchdog.archive.pending import clean_pending, mark, pending, pending_path
from watchdog.archive.store import Store, open_store
from watchdog.archive.verify import verify
from watchdog.archive.writer import ArchiveWriter

_DOC = b'{"@timestamp":"2026-11-02T10:00:00Z","event":{"id":"e1","action":"read"}}'


@pytest.mark.parametrize("marker", [b'{"seq": 2, "paths": ["events/day=2026-1', b"[1, 2]",
                                    b'{"seq": "x"}', b'{"seq": 2, "paths": "a"}', b""])
def test_a_damaged_marker_names_nothing_and_the_writer_starts(
        tmp_path: Path, marker: bytes, caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    w = ArchiveWriter(store, "daemon")
    w.add(EVENTS, "e1", 1.8e9, _DOC)
    w.flush()
    stray = "events/day=2027-01-15/daemon-000000000002-0000.parquet"
    store.write_bytes(stray, b"PAR1")
    store.write_bytes(pending_path("daemon"), marker)
    assert pending(store, "daemon", 1) is None
    assert "unreadable" in caplog.text
    assert verify(store).problems == [
        f"segment {stray}: recorded in no manifest (slipped in)"]
    ArchiveWriter(store, "daemon")  # starts: the marker is gone
    assert not store.exists(pending_path("daemon"))
    assert store.exists(stray)  # not named by any marker: left for verify to name


def test_a_marker_past_the_tip_names_its_segments_and_is_cleaned(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    stray = "events/day=2027-01-15/daemon-000000000001-0000.parquet"
    store.write_bytes(stray, b"PAR1")
    mark(store, "daemon", 1, [stray])
    assert pending(store, "daemon", 0) == [stray]
    assert pending(store, "daemon", 1) == []
    assert verify(store).ok  # a flush in progress is not tampering
    ArchiveWriter(store, "daemon")
    assert not store.exists(stray)
    assert not store.exists(pending_path("daemon"))


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls of the store's exists and read_bytes (each a round trip on S3)."""
    calls: Counter[str] = Counter()
    for name in ("exists", "read_bytes"):
        real = getattr(Store, name)

        def spy(self: Store, rel: str, real: Any = real, name: str = name) -> Any:
            calls[name] += 1
            return real(self, rel)

        monkeypatch.setattr(Store, name, spy)
    return calls


@pytest.mark.parametrize("there", [True, False])
def test_the_marker_is_read_once_without_an_existence_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, there: bool) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    stray = "events/day=2027-01-15/daemon-000000000001-0000.parquet"
    store.write_bytes(stray, b"PAR1")
    if there:
        mark(store, "daemon", 1, [stray])
    calls = _count_reads(monkeypatch)
    assert pending(store, "daemon", 0) == ([stray] if there else None)
    assert calls == Counter(read_bytes=1)
    calls.clear()
    clean_pending(store, "daemon", 0)
    assert calls == Counter(read_bytes=1)
    monkeypatch.undo()
    assert store.exists(stray) is not there
    assert not store.exists(pending_path("daemon"))


def test_read_or_none_is_none_only_for_an_absent_file(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a"), create=True)
    assert store.read_or_none("_manifest/x.pending") is None
    store.write_bytes("_manifest/x.pending", b"{}")
    assert store.read_or_none("_manifest/x.pending") == b"{}"
    (tmp_path / "a" / "_manifest" / "d.pending").mkdir()
    with pytest.raises(IsADirectoryError):  # not "no marker": the writer must not go on
        store.read_or_none("_manifest/d.pending")
