"""The anomaly stage's saved state: the bytes :meth:`AnomalyStage.snapshot` gives and
:meth:`AnomalyStage.restore` takes (pure: no I/O; the daemon writes and reads the file).

A restarted daemon without it starts blind for days: no account's usual day, no accumulated
risk (a leaver's low-and-slow theft), no own baselines. The format, like the MQTT checkpoint's
(:mod:`watchdog.daemon.checkpoint`): ``WDSTAGE`` and a format version (8 bytes), the SHA-256 of
the payload (32 bytes), the payload: msgpack (msgspec) of plain data only, no pickle; a numpy
array is ``[dtype str, shape, raw bytes]`` (:func:`pack`, :func:`unpack`, which checks dtype,
shape and length), the raw bytes as msgpack extension type 1 (read in place, not copied).
Each part of the stage keeps its own ``state()`` / ``load_state()`` next to its fields; the
stage's own part and the row layout the state belongs to are in
:mod:`watchdog.anomaly.stage_resume`.

:class:`StateError` says why bytes are refused, in one line and never with an account or
subject id (messages of errors met while reading the content are not quoted: they may).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

MAGIC = b"WDSTAGE\x01"  # the format's name and version (1)
_NAME = MAGIC[:7]
_DIGEST = 32
_BIG = 1 << 16  # arrays of more bytes go to the encoder as views, not copies
_RAW = 1  # the msgpack extension type of an array's raw bytes


class StateError(ValueError):
    """Bytes that are no usable anomaly stage state; ``str()`` is one line, without ids."""


def encode(doc: dict[str, Any]) -> bytes:
    """The saved form of a state document (plain data, arrays :func:`pack`'ed)."""
    return b"".join(encode_parts(doc))


def encode_parts(doc: dict[str, Any]) -> tuple[bytes, bytes]:
    """:func:`encode`'s bytes in two parts, not joined (a copy of a million accounts' ~2 GB
    took 1.7-6.7 s, most of it the new memory's page faults): the head (magic, version, the
    payload's SHA-256: 40 bytes) and the payload."""
    payload = encode_payload(doc)
    return head(payload), payload


def encode_payload(doc: dict[str, Any]) -> bytes:
    """The payload alone (its :func:`head` may then be computed elsewhere: hashing releases
    the GIL, ~1.4 s per million accounts)."""
    return msgspec.msgpack.encode(doc)


def head(payload: bytes | memoryview) -> bytes:
    """The 40 bytes before ``payload``: magic, version, its SHA-256."""
    return MAGIC + hashlib.sha256(payload).digest()


def decode(blob: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The state document in ``blob``; :class:`StateError` if it cannot be used. Its arrays'
    raw bytes are views into ``blob``."""
    view = memoryview(blob).cast("B")
    if len(view) < len(MAGIC) + _DIGEST:
        raise StateError(f"truncated ({len(view)} bytes)")
    if view[:len(_NAME)] != _NAME:
        raise StateError("not a watchdog anomaly stage state")
    if view[:len(MAGIC)] != MAGIC:
        raise StateError(f"format version {view[len(_NAME)]}, this version reads "
                         f"{MAGIC[len(_NAME)]}")
    payload = view[len(MAGIC) + _DIGEST:]
    if hashlib.sha256(payload).digest() != view[len(MAGIC):len(MAGIC) + _DIGEST]:
        raise StateError("checksum mismatch (truncated or altered)")
    try:
        doc = msgspec.msgpack.decode(payload, ext_hook=_ext)
    except (msgspec.DecodeError, ValueError):
        raise StateError("undecodable payload") from None
    if not isinstance(doc, dict):
        raise StateError("unexpected content: not a map")
    return doc


def _ext(code: int, data: memoryview) -> memoryview:
    """An array's raw bytes: a view into the bytes decoded (copied once, by :func:`unpack`)."""
    if code != _RAW:
        raise ValueError("unknown extension type")
    return data


def pack(a: np.ndarray) -> list[Any]:
    """An array as plain data: ``[dtype str, shape, raw bytes]`` (C order; the bytes as a
    msgpack extension, which decodes without a copy)."""
    a = np.ascontiguousarray(a)
    # (numpy arrays are buffers; numpy's stubs do not say so to every mypy)
    raw: bytes | memoryview = (memoryview(a.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
                               if a.nbytes > _BIG else a.tobytes())
    return [a.dtype.str, list(a.shape), msgspec.msgpack.Ext(_RAW, raw)]


def unpack(obj: Any, dtype: Any, shape: Sequence[int | None], what: str) -> np.ndarray:
    """The array of :func:`pack`'s ``obj``, which must be of ``dtype`` and ``shape`` (None: any
    length on that axis); a writable array of its own (it may be resized in place)."""
    if not (isinstance(obj, list) and len(obj) == 3 and isinstance(obj[0], str)
            and isinstance(obj[1], list)):
        raise StateError(f"{what}: not an array")
    dt, sh, raw = obj
    if isinstance(raw, msgspec.msgpack.Ext):  # (a document not read by decode())
        raw = raw.data
    if not isinstance(raw, memoryview | bytes):
        raise StateError(f"{what}: not an array")
    want = np.dtype(dtype)
    if dt != want.str:
        raise StateError(f"{what}: dtype {dt[:20]}, expected {want.str}")
    if len(sh) != len(shape) or not all(isinstance(n, int) and n >= 0 for n in sh) or any(
            e is not None and e != n for e, n in zip(shape, sh, strict=True)):
        raise StateError(f"{what}: shape {sh[:8]}, expected {list(shape)}")
    if len(raw) != math.prod(sh) * want.itemsize:
        raise StateError(f"{what}: {len(raw)} bytes for shape {sh}")
    out = np.empty(sh, want)
    out.reshape(-1).view(np.uint8)[:] = np.frombuffer(raw, np.uint8)  # (its own: resizable)
    return out


def strings(obj: Any, what: str) -> list[str]:
    """A list of strings."""
    if not isinstance(obj, list) or not all(isinstance(s, str) for s in obj):
        raise StateError(f"{what}: not a list of strings")
    return obj


def number(obj: Any, what: str) -> float:
    """A float (an int or a float in the document)."""
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        raise StateError(f"{what}: not a number")
    return float(obj)


def integer(obj: Any, what: str) -> int:
    if isinstance(obj, bool) or not isinstance(obj, int):
        raise StateError(f"{what}: not an integer")
    return obj


def sids_out(sids: Sequence[str | tuple[str, ...]]) -> list[str | list[str]]:
    """Subject ids as kept per event (a lone id as the string, else a tuple) as plain data."""
    return [s if isinstance(s, str) else list(s) for s in sids]


def sids_in(obj: Any, what: str) -> list[str | tuple[str, ...]]:
    """:func:`sids_out`'s list back as kept (tuples)."""
    if not isinstance(obj, list):
        raise StateError(f"{what}: not a list")
    out: list[str | tuple[str, ...]] = []
    for s in obj:
        if isinstance(s, str):
            out.append(s)
        else:
            out.append(tuple(strings(s, what)))
    return out


__all__: Sequence[str] = ("MAGIC", "StateError", "decode", "encode", "encode_parts",
                          "encode_payload", "head", "integer", "number", "pack", "sids_in",
                          "sids_out", "strings", "unpack")
