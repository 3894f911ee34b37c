"""Keyed-hash pseudonyms for data subjects: stable for one key, meaningless without it.

The same subject gets the same pseudonym in every alert (analysts can correlate) but an
alert leaked outside cannot be joined back to a customer without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os

KEY_ENV = "WATCHDOG_PSEUDONYM_KEY"
# Only for the demo and tests; ``watchdog run`` refuses it outside demo mode.
DEMO_KEY = b"watchdog-demo-key-do-not-use-in-production"


class Pseudonymizer:
    __slots__ = ("_cache", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self._key = key
        self._cache: dict[str, str] = {}

    def __call__(self, subject_id: str) -> str:
        p = self._cache.get(subject_id)
        if p is None:
            digest = hmac.new(self._key, subject_id.encode(), hashlib.sha256).hexdigest()
            p = "s-" + digest[:16]
            if len(self._cache) < 100_000:
                self._cache[subject_id] = p
        return p

    @property
    def is_demo(self) -> bool:
        return self._key == DEMO_KEY


def key_from_env(explicit: str | None = None) -> bytes | None:
    """The key from config (``explicit``) or ``WATCHDOG_PSEUDONYM_KEY``; None if neither."""
    value = explicit or os.environ.get(KEY_ENV)
    return value.encode() if value else None
