"""The audit chain itself: layout, hashes, and the judgement of a sequence of lines (pure).

Line ``n`` (1-based) of a trail::

    {"seq":n,"prev":"<sha256 hex of line n-1's bytes, or 64 zeros>","alert":{...},"hash":"<h>"}

- ``alert`` is the entry (an alert document, or any JSON object such as a recorded exception)
  exactly as given to the writer, compact: byte for byte what was published.
- ``hash`` is ``sha256(b'{"seq":n,"prev":"<prev>","alert":<alert bytes>}')``: the line without
  its ``hash`` member; in a *keyed* trail it is ``HMAC-SHA256(key, same bytes)``, so that whoever
  rewrites the file (and every copy of its head) cannot recompute it without the key.
- ``prev`` is the sha256 of the whole previous line (its bytes without the newline), ``hash``
  included, so every line seals the one before it.

The head (``{"seq":n,"hash":"<hash of line n>"}``, plus ``"mac":"hmac-sha256"`` when keyed)
seals the last line: truncation of the tail is caught by it. No I/O here: :mod:`.trail` reads
and writes files, :mod:`.command` is ``watchdog verify-audit``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

ZERO = "0" * 64
MAC = "hmac-sha256"
_LINE = re.compile(
    rb'\{"seq":(0|[1-9][0-9]{0,18}),"prev":"([0-9a-f]{64})","alert":(\{.*\}),'
    rb'"hash":"([0-9a-f]{64})"\}', re.DOTALL)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_json = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    lines: int  # lines read whose chain checked out (all of them when ok)
    problem: str | None = None  # one line: "line N: what is wrong", or None when ok
    note: str | None = None  # ok, but worth saying (the last line is not sealed by the head)
    accesses: int = 0  # of the lines, records of a look into the archive (watchdog.archive)


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    prev: str
    alert: bytes
    hash: str


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str
    keyed: bool = False

    def encode(self) -> bytes:
        doc: dict[str, Any] = {"seq": self.seq, "hash": self.hash}
        if self.keyed:
            doc["mac"] = MAC
        return orjson.dumps(doc) + b"\n"


def body(seq: int, prev: str, alert: bytes) -> bytes:
    return b'{"seq":%d,"prev":"%s","alert":%s}' % (seq, prev.encode(), alert)


def line_hash(seq: int, prev: str, alert: bytes, key: bytes | None = None) -> str:
    data = body(seq, prev, alert)
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def render(seq: int, prev: str, alert: bytes, key: bytes | None = None) -> bytes:
    """The line for an entry (without its newline)."""
    return b'{"seq":%d,"prev":"%s","alert":%s,"hash":"%s"}' % (
        seq, prev.encode(), alert, line_hash(seq, prev, alert, key).encode())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_field(line: bytes) -> str:
    """The ``hash`` member of a well-formed line (its last 64 hex digits before ``"}``)."""
    return line[-66:-2].decode("ascii", "replace")


def parse(line: bytes) -> Record | str:
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
    return Record(int(m.group(1)), m.group(2).decode(), alert, m.group(4).decode())


def check_line(n: int, line: bytes, prev_line: bytes | None,
               key: bytes | None = None) -> Record | str:
    """Record ``n`` (1-based) checked against its layout, its hash and the line before it."""
    rec = parse(line)
    if isinstance(rec, str):
        return rec
    if rec.seq != n:
        return (f"seq is {rec.seq}, expected {n}: a line was deleted, inserted, duplicated or "
                "moved")
    if rec.hash != line_hash(rec.seq, rec.prev, rec.alert, key):
        if key is not None:
            return ("hash does not match the line's content with this key: the line was edited, "
                    "or the trail was not written with this key")
        return "hash does not match the line's content: the line was edited"
    expected_prev = ZERO if prev_line is None else sha(prev_line)
    if rec.prev != expected_prev:
        if prev_line is None:
            return "prev is not 64 zeros but this is the first line: lines before it were removed"
        return (f"prev does not match line {n - 1}: a line was inserted, replaced or removed "
                "before it")
    return rec


ACCESS_KIND = b'"kind":"archive_access"'
ACCESS_COMMANDS = ("subject-report", "evidence")
_PSEUDONYM = re.compile(r"s-[0-9a-f]{16}")


def check_access(entry: bytes) -> str | None:
    """What is wrong with an archive access record (:mod:`watchdog.archive.access_log`), or
    None: who, when, which command, and whom it was about (a pseudonym, never a raw id).
    "" for an entry that is not one."""
    doc = _json.decode(entry)
    if doc.get("kind") != "archive_access":
        return ""
    if doc.get("command") not in ACCESS_COMMANDS:
        return f"archive access record of an unknown command {doc.get('command')!r}"
    for name in ("by", "at", "archive"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            return f"archive access record without {name!r}"
    if doc["command"] == "subject-report" and not _PSEUDONYM.fullmatch(
            str(doc.get("subject", ""))):
        return "archive access record whose subject is not a pseudonym"
    if doc["command"] == "evidence" and not isinstance(doc.get("alert"), str):
        return "archive access record of evidence without its alert"
    return None


def parse_head(data: bytes, name: str) -> Head | str:
    """A head record, or what is wrong with it (``name`` says which file, for the message)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return f"the head {name} is not valid JSON"
    if (not isinstance(doc, dict) or not {"seq", "hash"} <= set(doc) <= {"seq", "hash", "mac"}
            or type(doc["seq"]) is not int or doc["seq"] < 0
            or not isinstance(doc["hash"], str) or not _HEX64.fullmatch(doc["hash"])
            or doc.get("mac", MAC) != MAC):
        return f"the head {name} is not a head record"
    return Head(doc["seq"], doc["hash"], "mac" in doc)


def compact_alert(alert_bytes: bytes) -> bytes:
    """The entry as one compact line, unchanged when it already is one."""
    data = alert_bytes.strip()
    try:
        doc = _json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"the alert is not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ValueError("the alert must be a JSON object")
    if b"\n" in data or b"\r" in data or _LINE.fullmatch(render(1, ZERO, data)) is None:
        data = msgspec.json.encode(doc)  # (msgspec: integers of any size survive)
    return data


class ChainCheck:
    """Feed a trail's lines in order (:meth:`feed`), then judge the end (:meth:`result`)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key
        self.n = 0
        self.accesses = 0
        self.problem: str | None = None
        self._prev: bytes | None = None
        self._last: Record | None = None
        self._before_last: Record | None = None

    def feed(self, raw: bytes) -> bool:
        """One line as read (with its newline); False once a problem was found."""
        if self.problem is not None:
            return False
        n = self.n + 1
        if not raw.endswith(b"\n"):
            self.problem = (f"line {n}: incomplete last line without a newline (a torn write, "
                            "or cut by hand)")
            return False
        line = raw[:-1]
        if not line:
            self.problem = f"line {n}: empty line"
            return False
        rec = check_line(n, line, self._prev, self.key)
        if isinstance(rec, str):
            self.problem = f"line {n}: {rec}"
            return False
        if ACCESS_KIND in rec.alert:
            wrong = check_access(rec.alert)
            if wrong:
                self.problem = f"line {n}: {wrong}"
                return False
            self.accesses += wrong is None
        self.n, self._prev, self._before_last, self._last = n, line, self._last, rec
        return True

    def result(self, head: Head | str | None, *, require_head: bool = True,
               head_name: str = "the head") -> VerifyResult:
        """The verdict, given the head (None: there is none; a str: what is wrong with it)."""
        n = self.n
        if self.problem is not None:
            return VerifyResult(False, n, self.problem)
        if head is None:
            if require_head:
                return VerifyResult(False, n, f"no head file {head_name}: truncation of the "
                                    "tail cannot be ruled out (--no-head to check without it)")
            return VerifyResult(True, n, accesses=self.accesses)
        if isinstance(head, str):
            return VerifyResult(False, n, head)
        if head.keyed and self.key is None:
            return VerifyResult(False, n, "the trail is keyed (HMAC): give its key "
                                "(--key-file) to check it")
        if self.key is not None and not head.keyed and head.seq > 0:
            return VerifyResult(False, n, "a key was given but the head says the trail is not "
                                "keyed: rewritten without the key")
        if head.seq > n:
            return VerifyResult(False, n, f"line {n + 1}: missing; the head records {head.seq} "
                                f"alerts but the file has {n}: the tail was truncated")
        if head.seq == n:
            have = ZERO if self._last is None else self._last.hash
            if have != head.hash:
                return VerifyResult(False, n, f"line {n}: hash differs from the head's: the "
                                    "trail was rewritten")
            return VerifyResult(True, n, accesses=self.accesses)
        if n - head.seq > 1:
            return VerifyResult(False, n, f"line {head.seq + 2}: {n - head.seq} lines after the "
                                f"head's last seq {head.seq}: appended behind the writer's back")
        # one line ahead of the head: a crash between the line and its head (the writer
        # repairs the head when it reopens the trail). The line before is the one the head
        # sealed, and the chain links the extra line to it; reported, not failed.
        sealed = ZERO if self._before_last is None else self._before_last.hash
        if sealed != head.hash:
            return VerifyResult(False, n, f"line {head.seq}: hash differs from the head's: the "
                                "trail was rewritten")
        return VerifyResult(True, n, accesses=self.accesses,
                            note=f"line {n} is not sealed by the head (seq "
                            f"{head.seq}): written just before a crash, or appended by someone "
                            "else")
