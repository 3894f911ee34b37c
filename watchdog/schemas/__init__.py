"""The contract's JSON Schemas (verbatim copies of ``shared/contract``; a test keeps them equal)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson

NAMES = ("access-event", "directory-record", "subject-record", "account-record", "policy",
         "alert")


@cache
def load(name: str) -> dict[str, Any]:
    """The schema ``name`` (one of :data:`NAMES`) as a dict."""
    data = resources.files(__package__).joinpath(f"{name}.schema.json").read_bytes()
    schema: dict[str, Any] = orjson.loads(data)
    return schema
