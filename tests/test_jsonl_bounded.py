"""Replay's line reader is bounded: a 100 MB line is rejected as too_large with its real size
and its first bytes, without ever being in memory whole; the lines around it are read."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import orjson

from tests.builders import event_doc
from watchdog.decode import DEFAULT_MAX_BYTES, Decoder, Rejection
from watchdog.events import AccessEvent
from watchdog.files.jsonl import Oversized, RejectedWriter, lines, read_records

BIG = 100 * 1024 * 1024


def _file(path: Path, big: int) -> list[bytes]:
    good = [orjson.dumps(event_doc(id=f"ev-{i}")) for i in range(3)]
    with path.open("wb") as f:
        f.write(good[0] + b"\n")
        f.write(b'{"pad":"')
        block = b"x" * (1 << 20)
        for _ in range(big // len(block)):
            f.write(block)
        f.write(b'"}\r\n')
        f.write(good[1] + b"\n\n")
        f.write(good[2])  # no final newline
    return good


def test_a_100_mb_line_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = _file(path, BIG)
    tracemalloc.start()
    try:
        got = list(lines(str(path)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * DEFAULT_MAX_BYTES  # 100 MB line, a few MiB at most
    assert [n for n, _ in got] == [1, 2, 3, 5]
    assert [raw for n, raw in got if n != 2] == good
    big = got[1][1]
    assert isinstance(big, Oversized)
    assert big.size == BIG + len(b'{"pad":"') + len(b'"}\r')  # the line, less its newline
    assert len(big) == DEFAULT_MAX_BYTES + 1


def test_it_is_rejected_as_too_large_with_its_size(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    plain = tmp_path / "plain.jsonl"
    _file(plain, 3 * DEFAULT_MAX_BYTES)
    path.write_bytes(gzip.compress(plain.read_bytes()))
    rejected = RejectedWriter(tmp_path / "rejected.jsonl")
    events = list(read_records(str(path), Decoder(AccessEvent), rejected))
    rejected.close()
    assert len(events) == 3
    [rej] = [orjson.loads(ln) for ln in (tmp_path / "rejected.jsonl").read_bytes().splitlines()]
    assert rej["reason"] == "too_large"
    assert rej["line"] == 2
    assert rej["detail"].startswith(f"line of {3 * DEFAULT_MAX_BYTES + 11} bytes over the limit")
    assert rej["truncated"] is True
    assert rej["raw"].startswith('{"pad":"xxx')
    assert len(rej["raw"]) == 1024


def test_a_line_at_the_limit_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    doc = orjson.dumps(event_doc(id="ev-at-limit"))
    line = doc[:-1] + b" " * (DEFAULT_MAX_BYTES - len(doc)) + b"}"
    assert len(line) == DEFAULT_MAX_BYTES
    path.write_bytes(line + b"\r\n" + line + b"x\n")
    got = list(lines(str(path)))
    assert got[0] == (1, line)
    assert not isinstance(got[0][1], Oversized)
    assert not isinstance(Decoder(AccessEvent).decode(got[0][1]), Rejection)
    rej = Decoder(AccessEvent).decode(got[1][1])
    assert isinstance(rej, Rejection)
    assert rej.reason == "too_large"
