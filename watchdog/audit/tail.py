"""The last complete lines of a file, read from its end a block at a time (never the whole
file): the audit trail resumes its chain from them, and the file sinks seed the alert ids they
remember (:mod:`watchdog.daemon.sinks.recent`)."""

from __future__ import annotations

import os

BLOCK = 1 << 16


def tail(fd: int, size: int, n: int, *, block: int = BLOCK) -> tuple[int, list[bytes]]:
    """(end of the last complete line, the last ``n`` complete lines without their newlines,
    oldest first) of the first ``size`` bytes of the file open at ``fd``. Bytes after the last
    newline (a torn line) are not a line."""
    pos = size
    chunks: list[bytes] = []  # from the end backwards: joined once
    newlines = 0
    while pos > 0 and newlines <= n:  # n complete lines and the newline before them
        start = max(0, pos - block)
        chunks.append(os.pread(fd, pos - start, start))
        newlines += chunks[-1].count(b"\n")
        pos = start
    buf = b"".join(reversed(chunks))
    end = buf.rfind(b"\n")
    if end < 0 or n <= 0:
        return (0 if end < 0 else pos + end + 1), []
    lines = buf[:end].split(b"\n")
    if pos > 0:  # the first piece may be the end of a longer line: keep only whole ones
        lines = lines[1:]
    return pos + end + 1, lines[-n:]
