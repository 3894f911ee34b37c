"""Bytes in, typed document or a rejection out: the single decode/validate path.

Every source (files, Kafka, MQTT) goes through :class:`Decoder`, so a document is judged the
same way wherever it came from. A rejection carries a low-cardinality ``reason`` (a metric
label) and a one-line ``detail`` that names the JSON path, never the offending value of a
personal-data field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from watchdog.events import RAW_STAMP_CHECKS

T = TypeVar("T")

DEFAULT_MAX_BYTES = 1 << 20  # 1 MiB: an access event is ~0.5 KB; 100k subject ids fit.

REASONS = ("too_large", "not_json", "missing_field", "bad_timestamp", "invalid_value")


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str
    raw: bytes


_MISSING = re.compile(r"missing required field")
_TIME = re.compile(r"`datetime`|timezone|datetime|RFC 3339", re.IGNORECASE)
_PATH = re.compile(r"(.*)( - at `\$[^`'\"]*`)", re.DOTALL)
_QUOTED = re.compile(r"['\"].*", re.DOTALL)


def _redact(text: str) -> str:
    """The message without any value it quotes (enum and regex errors quote the value with
    ``repr``, either quote character, which may occur inside): from the first quote on, the
    message up to its JSON path is replaced."""
    m = _PATH.fullmatch(text)
    head, path = (m.group(1), m.group(2)) if m else (text, "")
    return _QUOTED.sub("'…'", head) + path


def _classify(err: msgspec.ValidationError) -> tuple[str, str]:
    # values are not logged (they may be personal data), nor used to classify
    text = _redact(str(err))
    if _MISSING.search(text):
        return "missing_field", text
    if _TIME.search(text):
        return "bad_timestamp", text
    return "invalid_value", text


class Decoder(Generic[T]):
    """Decode JSON bytes into ``type_``; never raises on bad input."""

    __slots__ = ("_check", "_dec", "_stamps", "max_bytes")

    def __init__(
        self,
        type_: type[T],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        check: Callable[[T], tuple[str, str] | None] | None = None,
    ) -> None:
        self._dec: msgspec.json.Decoder[T] = msgspec.json.Decoder(type_)
        self._check = check
        self._stamps = RAW_STAMP_CHECKS.get(type_)
        self.max_bytes = max_bytes

    def decode(self, raw: bytes) -> T | Rejection:
        if len(raw) > self.max_bytes:
            return Rejection("too_large", f"document of {len(raw)} bytes over the limit "
                             f"of {self.max_bytes}", raw)
        try:
            doc = self._dec.decode(raw)
        except msgspec.ValidationError as err:
            reason, detail = _classify(err)
            return Rejection(reason, detail, raw)
        except (msgspec.DecodeError, RecursionError) as err:
            return Rejection("not_json", f"not valid JSON: {err}", raw)
        except UnicodeDecodeError as err:  # msgspec checks UTF-8 only when it builds a str
            return Rejection("not_json", f"not valid UTF-8: {err.reason} at byte "
                             f"{err.start} of a string", raw)
        if self._stamps is not None and (path := self._stamps(raw)) is not None:
            return Rejection("bad_timestamp", f"Invalid RFC3339 encoded datetime (a 'T' between "
                             f"date and time, an offset with ':') - at `{path}`", raw)
        if self._check is not None and (problem := self._check(doc)) is not None:
            return Rejection(problem[0], problem[1], raw)
        return doc
