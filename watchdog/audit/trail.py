"""The audit trail on disk: the append-only file, its head, the writer's lock, and reading a
trail back to verify it (the chain's rules are in :mod:`.chain`).

The file and its head are created ``0600`` (and an existing trail's mode is narrowed to it):
alerts name accounts by pseudonym, and whoever can read the head can fake a shorter trail.
The head is replaced atomically after every append, once the line is durable; a crash can
leave the file at most one line ahead of its head, which :func:`verify` accepts (with a note)
and :class:`AuditTrail` repairs when it reopens the file.

Two kinds of writer share one trail: its *owner* (the daemon's audit sink: one at a time, held
by a lock on ``PATH.lock`` for as long as it is open) and short-lived appenders that record an
act in the same chain while the owner runs (``subject-report`` and ``evidence`` record each
look into the archive). Every append locks the trail file itself, and a writer that finds the
file grown since its own last line (another writer appended) reads the new tail back, checks it
against the head and its key, and chains onto it: one chain, whoever writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from watchdog.audit.chain import (
    ZERO,
    ChainCheck,
    Head,
    VerifyResult,
    compact_alert,
    hash_field,
    line_hash,
    parse,
    parse_head,
    render,
    sha,
)
from watchdog.audit.tail import tail

log = logging.getLogger(__name__)
MODE = 0o600
LOCK_WAIT = 10.0  # seconds an append waits for another writer's append


class AuditError(Exception):
    """The trail cannot be appended to safely (broken last line, head disagrees, locked)."""


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def owner_lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def _file_locked(fd: int, path: Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """The trail file locked for one append (or the check at open)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise AuditError(f"{path}: another writer has held the audit trail for "
                                 f"{wait:.0f} s") from None
            time.sleep(0.005)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


def read_head(path: Path) -> Head | str | None:
    """The head in ``path``; None when there is none; a str: what is wrong with it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"cannot read the head {path}: {err.strerror}"
    return parse_head(data, str(path))


def _write_head(path: Path, head: Head, *, fsync: bool) -> None:
    """Replace the head atomically: a reader sees the old head or the new one, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, MODE)
    try:
        os.fchmod(fd, MODE)  # a stale .tmp may exist with a wider mode
        os.write(fd, head.encode())
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the data itself is synced
    finally:
        os.close(fd)


class AuditTrail:
    """Appends entries to a hash-chained JSONL file and keeps its head beside it.

    ``key``: a keyed chain (HMAC-SHA256); a trail is keyed from its first line or never.
    Reopening an existing trail resumes its chain from the last line (checked against the
    head); a torn last line without its newline (a crash mid-write, never acknowledged) is cut
    off. ``owner``: one owner at a time (``PATH.lock`` is held while open); appenders that are
    not owners (``owner=False``) may write between its lines (see the module). Thread-safe.

    :meth:`append` takes an alert document's bytes; :meth:`append_entry` any JSON object
    (e.g. a recorded exception), both chained the same way.

    ``recall``: the last ``recall`` complete lines read at open are kept in :attr:`recalled`
    (the audit sink's remembered alert ids come from them: the tail is read once).
    """

    def __init__(self, path: Path | str, *, fsync: bool = True, key: bytes | None = None,
                 owner: bool = True, recall: int = 0) -> None:
        self.path = Path(path)
        self.recalled: list[bytes] = []
        self.head_path = head_path(self.path)
        self.fsync = fsync
        self.key = key
        self._lock = threading.Lock()
        self._owner_fd: int | None = None
        if owner:
            self._owner_fd = os.open(owner_lock_path(self.path), os.O_RDWR | os.O_CREAT, MODE)
            try:
                fcntl.flock(self._owner_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._owner_fd)
                raise AuditError(f"{self.path}: another writer holds the audit trail") from None
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, MODE)
        try:
            with _file_locked(self._fd, self.path):
                mode = stat.S_IMODE(os.fstat(self._fd).st_mode)
                if mode & 0o077:
                    log.warning("audit trail %s: narrowing its mode %o to 600", self.path, mode)
                    os.fchmod(self._fd, MODE)
                self._sync(recall)
                _write_head(self.head_path, self._head(), fsync=fsync)
        except BaseException:
            os.close(self._fd)
            self._fd = None
            self._release_owner()
            raise

    def _sync(self, recall: int = 0) -> None:
        """Resume the chain from the file's last line (at open; after another writer's)."""
        self.seq, self._last = self._resume(recall)
        self._last_hash = ZERO if self._last is None else hash_field(self._last)
        assert self._fd is not None
        self._size = os.fstat(self._fd).st_size

    def _release_owner(self) -> None:
        fd, self._owner_fd = self._owner_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _head(self) -> Head:
        return Head(self.seq, self._last_hash, self.key is not None)

    def _resume(self, recall: int = 0) -> tuple[int, bytes | None]:
        """(last seq, last line) of the existing file; cuts a torn tail. Keeps the last
        ``recall`` lines in :attr:`recalled`."""
        assert self._fd is not None
        fd = self._fd
        size = os.fstat(fd).st_size
        tail_start, lines = tail(fd, size, max(2, recall))
        if recall:
            self.recalled = lines[-recall:]
        lines = lines[-2:]
        last = lines[-1] if lines else None
        if tail_start < size:
            log.warning("audit trail %s: cutting a torn last line of %d bytes (a crash during "
                        "a write)", self.path, size - tail_start)
            os.ftruncate(fd, tail_start)
            if self.fsync:
                os.fsync(fd)
        if last is None:
            seq = 0
        else:
            rec = parse(last)
            if isinstance(rec, str):
                raise AuditError(f"{self.path}: the last line is broken ({rec}); run "
                                 "`watchdog verify-audit` and move the file aside")
            if rec.hash != line_hash(rec.seq, rec.prev, rec.alert, self.key):
                raise AuditError(f"{self.path}: the last line was edited (hash mismatch), or the "
                                 "trail was written with another key (or none); run `watchdog "
                                 "verify-audit` and move the file aside")
            seq = rec.seq
        head = read_head(self.head_path)
        if isinstance(head, str):
            raise AuditError(f"{self.path}: {head}")
        if head is not None:
            if head.seq > 0 and head.keyed != (self.key is not None):
                raise AuditError(f"{self.path}: the trail is {'' if head.keyed else 'not '}"
                                 f"keyed but the sink is {'' if self.key else 'not '}configured "
                                 "with a key: start a new file for a keyed trail")
            last_hash = ZERO if last is None else hash_field(last)
            # a crash between a line and its head leaves the head one line behind
            lagging = head.seq == seq - 1 and head.hash == (
                ZERO if len(lines) < 2 else hash_field(lines[-2]))
            if head.seq > seq or (head.seq == seq and head.hash != last_hash) or (
                    head.seq < seq and not lagging):
                raise AuditError(f"{self.path}: the file (last seq {seq}) does not match its "
                                 f"head (seq {head.seq}): truncated or rewritten; run "
                                 "`watchdog verify-audit`")
            if lagging:
                log.warning("audit trail %s: sealing line %d, written before a crash without "
                            "its head", self.path, seq)
        return seq, last

    def append(self, alert_bytes: bytes) -> int:
        """Append one entry (JSON object bytes); durable on return when ``fsync``. Returns its
        seq."""
        alert = compact_alert(alert_bytes)
        with self._lock:
            if self._fd is None:
                raise AuditError(f"{self.path}: the audit trail is closed")
            with _file_locked(self._fd, self.path):
                return self._append_locked(alert)

    def _append_locked(self, alert: bytes) -> int:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size != self._size:  # another writer appended: chain onto its last line
            self._sync()
            size = self._size
        seq = self.seq + 1
        prev = ZERO if self._last is None else sha(self._last)
        line = render(seq, prev, alert, self.key)
        data = line + b"\n"
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # O_APPEND on a regular file: the disk is full
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
            if self.fsync:
                os.fsync(self._fd)
        except OSError:
            # leave no torn or unsealed line behind: the chain continues from the old end
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise
        self.seq, self._last = seq, line
        self._last_hash = hash_field(line)
        self._size = size + len(data)
        _write_head(self.head_path, self._head(), fsync=self.fsync)
        return seq

    def append_entry(self, entry: Mapping[str, Any]) -> int:
        """Append any JSON object (e.g. ``{"kind": "exception", ...}``); returns its seq."""
        return self.append(orjson.dumps(dict(entry)))

    def head(self) -> tuple[int, str]:
        """(last seq, its hash): what to keep elsewhere to detect truncation later."""
        return self.seq, self._last_hash

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)
            self._release_owner()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def verify(path: Path | str, head: Path | str | None = None, *, require_head: bool = True,
           key: bytes | None = None) -> VerifyResult:
    """Check the whole chain of ``path`` and its head (``FILE.head`` by default).

    ``require_head=False`` accepts a missing head (then a truncated tail goes unseen); ``key``
    checks a keyed (HMAC) trail.
    """
    path = Path(path)
    head_file = head_path(path) if head is None else Path(head)
    got = read_head(head_file)
    if isinstance(got, Head) and got.keyed and key is None:  # said first: every line would fail
        return VerifyResult(False, 0, "the trail is keyed (HMAC): give its key (--key-file) to "
                            "check it")
    check = ChainCheck(key)
    try:
        f = path.open("rb")
    except OSError as err:
        return VerifyResult(False, 0, f"{path}: cannot open: {err.strerror}")
    with f:
        for raw in f:
            if not check.feed(raw):
                break
    return check.result(got, require_head=require_head,
                        head_name=str(head_file))
