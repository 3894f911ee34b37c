"""Structured JSON logs (structlog) on stderr, one object per line, never personal data.

Callers log counts, rule ids, alert ids, topics, partitions and offsets: never subject ids,
user ids, raw documents or payloads. As a second line of defence :func:`_scrub` drops fields
whose names say they may hold such data.

Libraries' stdlib logging (aiokafka, aiomqtt, httpx) goes out as the same JSON lines, at
WARNING and above, and the same message from the same logger at most once per
:data:`REPEAT_SECONDS` (a broker that is down makes aiokafka log every retry).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import structlog

# field names that could carry personal data if a caller slipped
_SENSITIVE = frozenset({"user_id", "user", "subject_id", "subject_ids", "subjects", "raw",
                        "payload", "value", "document", "event", "alert_doc", "password",
                        "token", "key"})


def _scrub(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    for field in _SENSITIVE.intersection(event_dict):
        if field != "event" or not isinstance(event_dict[field], str):
            event_dict[field] = "[redacted]"
    return event_dict


REPEAT_SECONDS = 30.0


class _Repeats(logging.Filter):
    """Let the same (logger, message template) through once per REPEAT_SECONDS."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        if now - self._last.get(key, -REPEAT_SECONDS) < REPEAT_SECONDS:
            return False
        self._last[key] = now
        return True


def configure(level: str = "info") -> None:
    """JSON lines on stderr at ``level``; call once at start-up (idempotent)."""
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Repeats())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=structlog.processors.JSONRenderer(),
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
    ))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            _scrub,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(component: str) -> Any:
    return structlog.get_logger("watchdog").bind(component=component)
