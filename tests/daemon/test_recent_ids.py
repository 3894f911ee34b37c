"""The alert ids of a file's last lines, read from its end (watchdog.daemon.sinks.recent)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from watchdog.audit.chain import ZERO, render
from watchdog.daemon.sinks.recent import (
    RecentIds,
    alert_key,
    excused_key,
    last_lines,
    tail_alert_ids,
)


def doc(i: int, **extra: object) -> bytes:
    return orjson.dumps({"alert_id": f"a{i}", "rule": "external_media", **extra})


def test_an_empty_or_missing_file_has_no_lines(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert last_lines(empty, 10) == []
    assert last_lines(tmp_path / "missing.jsonl", 10) == []
    assert tail_alert_ids(tmp_path / "missing.jsonl") == []


def test_one_line(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_bytes(doc(1) + b"\n")
    assert last_lines(f, 10) == [doc(1)]
    assert tail_alert_ids(f, 10) == ["a1"]


def test_a_torn_last_line_is_left_out(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_bytes(doc(1) + b"\n" + doc(2)[:9])
    assert last_lines(f, 10) == [doc(1)]
    assert tail_alert_ids(f, 10) == ["a1"]
    f.write_bytes(doc(2)[:9])  # nothing but a torn line
    assert last_lines(f, 10) == []


def test_lines_longer_than_the_read_block(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    lines = [doc(i, summary="x" * (300 + 50 * i)) for i in range(6)]
    f.write_bytes(b"".join(line + b"\n" for line in lines))
    for n in range(1, 8):
        assert last_lines(f, n, block=64) == lines[-n:]
    assert tail_alert_ids(f, 3) == ["a3", "a4", "a5"]


def test_only_the_last_n_of_more_lines(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_bytes(b"".join(doc(i) + b"\n" for i in range(1000)))
    assert tail_alert_ids(f, 5) == ["a995", "a996", "a997", "a998", "a999"]
    assert last_lines(f, 0) == []


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
       st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")),
       st.integers(1, 40), st.integers(1, 50))
def test_the_same_as_splitting_the_whole_file(
        lines: list[bytes], torn: bytes, n: int, block: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "a.jsonl"
        f.write_bytes(b"".join(line + b"\n" for line in lines) + torn)
        assert last_lines(f, n, block=block) == lines[-n:]


def test_audit_lines_give_their_alerts_id_and_other_entries_none() -> None:
    assert alert_key(render(1, ZERO, doc(7))) == "a7"
    excused = doc(8, labels={"excused_by": "exception", "exception_reason": "r"})
    assert alert_key(render(2, ZERO, excused)) == excused_key("a8")
    label = orjson.dumps({"kind": "anomaly_label", "alert_id": "a7", "rule": "anomaly"})
    assert alert_key(render(3, ZERO, label)) is None
    access = orjson.dumps({"kind": "archive_access", "command": "evidence", "alert_id": "a7"})
    assert alert_key(render(4, ZERO, access)) is None
    assert alert_key(b"not json") is None
    assert alert_key(b"[1, 2]") is None
    assert alert_key(b'{"rule": "x"}') is None


def test_recent_ids_forget_the_oldest() -> None:
    ids = RecentIds(3)
    ids.extend(["a", "b", "c", "a", "d"])  # "a" seen again: newest
    assert "b" not in ids
    assert {k for k in "abcd" if k in ids} == {"a", "c", "d"}
    assert len(ids) == 3
