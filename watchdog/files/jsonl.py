"""Reading JSONL inputs (``-`` for stdin, ``.gz`` accepted) and writing rejections."""

from __future__ import annotations

import base64
import gzip
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson

from watchdog.decode import DEFAULT_MAX_BYTES, Decoder, Rejection

T = TypeVar("T")
SKIP_CHUNK = 1 << 16  # what is read at a time of a line too long to keep
KEEP_OF_OVERSIZED = 1024  # bytes of an oversized line written to the rejections file


class InputError(OSError):
    """An input that cannot be read at all (missing file, not gzip)."""


def open_binary(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    p = Path(path)
    try:
        raw: BinaryIO = p.open("rb")
    except OSError as err:
        raise InputError(f"{path}: cannot open: {err.strerror}") from None
    if p.suffix == ".gz":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def size_of(path: str) -> int | None:
    """Bytes to read, for a progress bar (None for stdin or compressed input)."""
    if path == "-" or path.endswith(".gz"):
        return None
    try:
        return Path(path).stat().st_size
    except OSError:
        return None


class Oversized(bytes):
    """The first ``max_bytes + 1`` bytes of a line of ``size`` bytes: over the limit, so every
    decoder rejects it as ``too_large``, without the whole line ever in memory."""

    size: int

    def __new__(cls, head: bytes, size: int) -> Oversized:
        obj = super().__new__(cls, head)
        obj.size = size
        return obj


def _skip_line(f: BinaryIO) -> int:
    """Read to the end of the current line in bounded chunks; the bytes skipped (without the
    newline)."""
    skipped = 0
    while True:
        chunk = f.readline(SKIP_CHUNK)
        if chunk.endswith(b"\n"):
            return skipped + len(chunk) - 1
        skipped += len(chunk)
        if not chunk:
            return skipped


def lines(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its newline) for every non-blank line. A line longer than
    ``max_bytes`` is not read whole: its first bytes come as :class:`Oversized` (memory stays
    bounded whatever the input: a 100 MB line costs ``max_bytes``, not 100 MB)."""
    f = open_binary(path)
    limit = max_bytes + 2  # room for the line's own "\r\n"
    n = 0
    try:
        while line := f.readline(limit):
            n += 1
            if len(line) == limit and not line.endswith(b"\n"):
                yield n, Oversized(line[:max_bytes + 1], len(line) + _skip_line(f))
                continue
            stripped = line.strip()
            if stripped:
                yield n, stripped
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise InputError(f"{path}: read failed: {err}") from None
    finally:
        if f is not sys.stdin.buffer:
            f.close()


class RejectedWriter:
    """``*.rejected.jsonl``: each bad document untouched, with where it came from and why."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: io.BufferedWriter | None = None
        self.count = 0

    def write(self, source: str, line: int, rej: Rejection) -> None:
        if self._f is None:
            self._f = self.path.open("wb")
        data, detail, extra = rej.raw, rej.detail, {}
        if isinstance(data, Oversized):  # its size, and its first bytes to find it by
            detail = (f"line of {data.size} bytes over the limit of {len(data) - 1}; its "
                      f"first {KEEP_OF_OVERSIZED} bytes kept")
            data, extra = bytes(data[:KEEP_OF_OVERSIZED]), {"truncated": True}
        try:
            raw: dict[str, Any] = {"raw": data.decode("utf-8")}
        except UnicodeDecodeError:
            raw = {"raw_base64": base64.b64encode(data).decode()}
        self._f.write(orjson.dumps({"source": source, "line": line, "reason": rej.reason,
                                    "detail": detail, **raw, **extra}) + b"\n")
        self.count += 1

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def read_records(
    path: str, decoder: Decoder[T], rejected: RejectedWriter | None = None
) -> Iterator[T]:
    """Decoded documents of a JSONL file; bad ones go to ``rejected``."""
    for doc, _raw in read_records_raw(path, decoder, rejected):
        yield doc


def read_records_raw(
    path: str, decoder: Decoder[T], rejected: RejectedWriter | None = None
) -> Iterator[tuple[T, bytes]]:
    """(decoded document, its line) of a JSONL file; bad ones go to ``rejected``."""
    for n, raw in lines(path):
        doc = decoder.decode(raw)
        if isinstance(doc, Rejection):
            if rejected is not None:
                rejected.write(path, n, doc)
            continue
        yield doc, raw
