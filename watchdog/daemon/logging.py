"""Structured JSON logs (structlog) on stderr, one object per line, never personal data.

Callers log counts, rule ids, alert ids, topics, partitions and offsets: never subject ids,
user ids, raw documents or payloads. As a second line of defence :func:`_scrub` drops fields
whose names say they may hold such data.
"""

from __future__ import annotations

import logging
import sys
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


def configure(level: str = "info") -> None:
    """JSON lines on stderr at ``level``; call once at start-up (idempotent)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
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
