"""A tamper-evident local audit trail of alerts: hash-chained JSONL plus a separate head.

Every alert the watchdog raises can be appended here, so that later one can prove which alerts
were raised and that none was removed, altered, reordered or slipped in. Line ``n`` (1-based)::

    {"seq":n,"prev":"<sha256 hex of line n-1's bytes, or 64 zeros>","alert":{...},"hash":"<h>"}

- ``alert`` is the alert document exactly as given to :meth:`AuditTrail.append` (compact JSON,
  byte for byte what was published), so it can be compared with the ``alerts`` topic.
- ``hash`` is ``sha256(b'{"seq":n,"prev":"<prev>","alert":<alert bytes>}')``: the line itself
  without its ``hash`` member. Anyone can recompute it with a few lines of any language.
- ``prev`` is the sha256 of the whole previous line (its bytes without the newline), ``hash``
  included, so every line seals the one before it.

Detected by :func:`verify`: an edited line (its ``hash`` no longer matches), a deleted,
duplicated or moved line (``seq`` is not its line number), an inserted or replaced line even
with a recomputed ``hash`` (the ``prev`` of it or of the next line does not match), any byte
changed outside the fixed layout (the line must match the layout exactly).

Truncation of the tail leaves a valid shorter chain; it is caught by the *head*, ``FILE.head``
(``{"seq":n,"hash":"<hash of line n>"}``), replaced atomically after every append. Keep a copy
of the head elsewhere (ship it with the metrics, print it in a ticket): whoever can rewrite
both the file and every copy of its head can rewrite history, because the chain is unkeyed.
The head is written after the line is durable, so a crash can leave the file at most one line
ahead of its head; :func:`verify` accepts that one line, and :class:`AuditTrail` repairs the
head when it reopens the file.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import msgspec
import orjson

log = logging.getLogger(__name__)

ZERO = "0" * 64
_LINE = re.compile(
    rb'\{"seq":(0|[1-9][0-9]{0,18}),"prev":"([0-9a-f]{64})","alert":(\{.*\}),'
    rb'"hash":"([0-9a-f]{64})"\}', re.DOTALL)
_HEAD_KEYS = {"seq", "hash"}
_json = msgspec.json.Decoder()


class AuditError(Exception):
    """The trail cannot be appended to safely (broken last line, head disagrees, locked)."""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    lines: int  # lines read whose chain checked out (all of them when ok)
    problem: str | None = None  # one line: "line N: what is wrong", or None when ok
    note: str | None = None  # ok, but worth saying (the last line is not sealed by the head)


@dataclass(frozen=True, slots=True)
class _Record:
    seq: int
    prev: str
    alert: bytes
    hash: str


def _body(seq: int, prev: str, alert: bytes) -> bytes:
    return b'{"seq":%d,"prev":"%s","alert":%s}' % (seq, prev.encode(), alert)


def _hash(seq: int, prev: str, alert: bytes) -> str:
    return hashlib.sha256(_body(seq, prev, alert)).hexdigest()


def _render(seq: int, prev: str, alert: bytes) -> bytes:
    """The line for an alert (without its newline)."""
    return b'{"seq":%d,"prev":"%s","alert":%s,"hash":"%s"}' % (
        seq, prev.encode(), alert, _hash(seq, prev, alert).encode())


def _parse(line: bytes) -> _Record | str:
    """A line's fields, or what is wrong with its layout (the hash is not checked here)."""
    m = _LINE.fullmatch(line)
    if m is None:
        return "not an audit record (the layout of the line was altered)"
    alert = m.group(3)
    try:
        doc = _json.decode(alert)
    except (msgspec.DecodeError, UnicodeDecodeError):  # (msgspec checks UTF-8 lazily)
        return "the alert is not valid JSON"
    if not isinstance(doc, dict):
        return "the alert is not a JSON object"
    return _Record(int(m.group(1)), m.group(2).decode(), alert, m.group(4).decode())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_line(n: int, line: bytes, prev_line: bytes | None) -> _Record | str:
    """Record ``n`` (1-based) checked against its layout, its hash and the line before it."""
    rec = _parse(line)
    if isinstance(rec, str):
        return rec
    if rec.seq != n:
        return (f"seq is {rec.seq}, expected {n}: a line was deleted, inserted, duplicated or "
                "moved")
    if rec.hash != _hash(rec.seq, rec.prev, rec.alert):
        return "hash does not match the line's content: the line was edited"
    expected_prev = ZERO if prev_line is None else _sha(prev_line)
    if rec.prev != expected_prev:
        if prev_line is None:
            return "prev is not 64 zeros but this is the first line: lines before it were removed"
        return (f"prev does not match line {n - 1}: a line was inserted, replaced or removed "
                "before it")
    return rec


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def _read_head(path: Path) -> tuple[int, str] | str:
    """(seq, hash) of a head file, or what is wrong with it."""
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as err:
        return f"cannot read the head {path}: {err.strerror}"
    except orjson.JSONDecodeError:
        return f"the head {path} is not valid JSON"
    if (not isinstance(doc, dict) or set(doc) != _HEAD_KEYS or type(doc["seq"]) is not int
            or doc["seq"] < 0 or not isinstance(doc["hash"], str)
            or not re.fullmatch(r"[0-9a-f]{64}", doc["hash"])):
        return f"the head {path} is not a head record"
    return doc["seq"], doc["hash"]


def _write_head(path: Path, seq: int, digest: str, *, fsync: bool) -> None:
    """Replace the head atomically: a reader sees the old head or the new one, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    data = orjson.dumps({"seq": seq, "hash": digest}) + b"\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
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


def _compact_alert(alert_bytes: bytes) -> bytes:
    """The alert as one compact line, unchanged when it already is one."""
    data = alert_bytes.strip()
    try:
        doc = _json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"the alert is not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError("the alert must be a JSON object")
    if b"\n" in data or b"\r" in data or _LINE.fullmatch(_render(1, ZERO, data)) is None:
        data = msgspec.json.encode(doc)  # (msgspec: integers of any size survive)
    return data


class AuditTrail:
    """Appends alerts to a hash-chained JSONL file and keeps its head beside it.

    Reopening an existing trail resumes its chain from the last line (checked against the
    head); a torn last line without its newline (a crash mid-write, never acknowledged) is cut
    off. One writer at a time: the file is locked while open. Thread-safe.
    """

    def __init__(self, path: Path | str, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.head_path = head_path(self.path)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AuditError(f"{self.path}: another writer holds the audit trail") from None
            self.seq, self._last = self._resume()
            self._last_hash = ZERO if self._last is None else _sha_field(self._last)
            _write_head(self.head_path, self.seq, self._last_hash, fsync=fsync)
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise

    def _resume(self) -> tuple[int, bytes | None]:
        """(last seq, last line) of the existing file; cuts a torn tail."""
        assert self._fd is not None
        fd = self._fd
        size = os.fstat(fd).st_size
        tail_start, lines = _tail(fd, size)
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
            rec = _parse(last)
            if isinstance(rec, str):
                raise AuditError(f"{self.path}: the last line is broken ({rec}); run "
                                 "`watchdog verify-audit` and move the file aside")
            if rec.hash != _hash(rec.seq, rec.prev, rec.alert):
                raise AuditError(f"{self.path}: the last line was edited (hash mismatch); run "
                                 "`watchdog verify-audit` and move the file aside")
            seq = rec.seq
        if self.head_path.exists():
            head = _read_head(self.head_path)
            if isinstance(head, str):
                raise AuditError(f"{self.path}: {head}")
            head_seq, head_hash = head
            last_hash = ZERO if last is None else _sha_field(last)
            # a crash between a line and its head leaves the head one line behind
            lagging = head_seq == seq - 1 and head_hash == (
                ZERO if len(lines) < 2 else _sha_field(lines[-2]))
            if head_seq > seq or (head_seq == seq and head_hash != last_hash) or (
                    head_seq < seq and not lagging):
                raise AuditError(f"{self.path}: the file (last seq {seq}) does not match its "
                                 f"head (seq {head_seq}): truncated or rewritten; run "
                                 "`watchdog verify-audit`")
            if lagging:
                log.warning("audit trail %s: sealing line %d, written before a crash without "
                            "its head", self.path, seq)
        return seq, last

    def append(self, alert_bytes: bytes) -> None:
        """Append one alert document (JSON object bytes); durable on return when ``fsync``."""
        alert = _compact_alert(alert_bytes)
        with self._lock:
            if self._fd is None:
                raise AuditError(f"{self.path}: the audit trail is closed")
            seq = self.seq + 1
            prev = ZERO if self._last is None else _sha(self._last)
            line = _render(seq, prev, alert)
            data = line + b"\n"
            size = os.fstat(self._fd).st_size
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
            self._last_hash = _hash(seq, prev, alert)
            _write_head(self.head_path, seq, self._last_hash, fsync=self.fsync)

    def head(self) -> tuple[int, str]:
        """(last seq, its hash): what to keep elsewhere to detect truncation later."""
        return self.seq, self._last_hash

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sha_field(line: bytes) -> str:
    """The ``hash`` member of a well-formed line (its last 64 hex digits before ``"}``)."""
    return line[-66:-2].decode("ascii", "replace")


def _tail(fd: int, size: int) -> tuple[int, list[bytes]]:
    """(end of the last complete line, the last two complete lines without newlines)."""
    chunk = 1 << 16
    pos = size
    buf = b""
    while pos > 0:
        start = max(0, pos - chunk)
        buf = os.pread(fd, pos - start, start) + buf
        pos = start
        if buf.count(b"\n") >= 3:  # the newline ending the last complete line, and two before
            break
    end = buf.rfind(b"\n")
    if end < 0:
        return 0, []
    complete = buf[:end].split(b"\n")
    if pos > 0:  # the first piece may be cut: keep only pieces known to be whole
        complete = complete[1:]
    return pos + end + 1, complete[-2:]


def verify(path: Path | str, head: Path | str | None = None, *,
           require_head: bool = False) -> VerifyResult:
    """Check the whole chain of ``path`` and, if present, its head (``FILE.head`` by default).

    ``require_head``: a missing head is a problem (otherwise a truncated tail goes unseen).
    """
    path = Path(path)
    head_file = head_path(path) if head is None else Path(head)
    n = 0
    prev_line: bytes | None = None
    last: _Record | None = None
    before_last: _Record | None = None
    try:
        f = path.open("rb")
    except OSError as err:
        return VerifyResult(False, 0, f"{path}: cannot open: {err.strerror}")
    with f:
        for raw in f:
            n += 1
            if not raw.endswith(b"\n"):
                return VerifyResult(False, n - 1, f"line {n}: incomplete last line without a "
                                    "newline (a torn write, or cut by hand)")
            line = raw[:-1]
            if not line:
                return VerifyResult(False, n - 1, f"line {n}: empty line")
            rec = _check_line(n, line, prev_line)
            if isinstance(rec, str):
                return VerifyResult(False, n - 1, f"line {n}: {rec}")
            prev_line, last, before_last = line, rec, last
    if not head_file.exists():
        if require_head:
            return VerifyResult(False, n, f"no head file {head_file}: truncation of the tail "
                                "cannot be ruled out")
        return VerifyResult(True, n)
    got = _read_head(head_file)
    if isinstance(got, str):
        return VerifyResult(False, n, got)
    head_seq, head_hash = got
    if head_seq > n:
        return VerifyResult(False, n, f"line {n + 1}: missing; the head records {head_seq} "
                            f"alerts but the file has {n}: the tail was truncated")
    if head_seq == n:
        have = ZERO if last is None else last.hash
        if have != head_hash:
            return VerifyResult(False, n, f"line {n}: hash differs from the head's: the trail "
                                "was rewritten")
        return VerifyResult(True, n)
    if n - head_seq > 1:
        return VerifyResult(False, n, f"line {head_seq + 2}: {n - head_seq} lines after the "
                            f"head's last seq {head_seq}: appended behind the writer's back")
    # one line ahead of the head: a crash between the line and its head (the writer repairs
    # the head when it reopens the trail). The line before is the one the head sealed, and
    # the chain links the extra line to it; it is reported, not failed.
    sealed = ZERO if before_last is None else before_last.hash
    if sealed != head_hash:
        return VerifyResult(False, n, f"line {head_seq}: hash differs from the head's: the "
                            "trail was rewritten")
    return VerifyResult(True, n, note=f"line {n} is not sealed by the head (seq {head_seq}): "
                        "written just before a crash, or appended by someone else")


# -- `watchdog verify-audit FILE` ---------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="audit trail JSONL (its head FILE.head is checked too)")
    parser.add_argument("--head", help="a separately kept copy of the head (default FILE.head)")
    parser.add_argument("--require-head", action="store_true",
                        help="fail when there is no head (a truncated tail would go unseen)")


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        print(f"watchdog: error: {path}: no such file", file=sys.stderr)
        return 2
    head = Path(args.head) if args.head else None
    if head is not None and not head.is_file():
        print(f"watchdog: error: --head {head}: no such file", file=sys.stderr)
        return 2
    result = verify(path, head, require_head=args.require_head)
    if not result.ok:
        print(f"{path}: {result.problem}")
        return 1
    if head is None and not head_path(path).exists():
        print(f"watchdog: warning: no head file {head_path(path)}: a truncated tail cannot be "
              "detected", file=sys.stderr)
    if result.note:
        print(f"watchdog: warning: {path}: {result.note}", file=sys.stderr)
    print(f"ok: {result.lines} alerts, chain intact")
    return 0
