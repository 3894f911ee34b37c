"""Reading JSONL inputs (``-`` for stdin, ``.gz`` accepted) and writing rejections."""

from __future__ import annotations

import base64
import gzip
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

import orjson

from watchdog.decode import Decoder, Rejection

T = TypeVar("T")


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


def lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its newline) for every non-blank line."""
    f = open_binary(path)
    try:
        for n, line in enumerate(f, 1):
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
        try:
            raw: dict[str, str] = {"raw": rej.raw.decode("utf-8")}
        except UnicodeDecodeError:
            raw = {"raw_base64": base64.b64encode(rej.raw).decode()}
        self._f.write(orjson.dumps({"source": source, "line": line, "reason": rej.reason,
                                    "detail": rej.detail, **raw}) + b"\n")
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
