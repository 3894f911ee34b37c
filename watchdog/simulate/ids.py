"""Identifiers: stable seeds, unique event ids, account and subject ids."""

from __future__ import annotations

import hashlib

_MASK = (1 << 64) - 1
INJECTED = 1 << 63  # event-id namespace of planned (injected or benign) events


def derive(*parts: object) -> int:
    """A stable 64-bit seed from any labels (not ``hash()``: that changes per process)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def mix64(n: int) -> int:
    """splitmix64's finaliser: a bijection on 64-bit integers, so distinct in, distinct out."""
    z = n & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


class EventIds:
    """Event ids that look random but are unique: ``prefix-<mix64(key + n)>``."""

    __slots__ = ("_key",)

    def __init__(self, seed: int) -> None:
        self._key = derive("event-ids", seed)

    def make(self, prefix: str, n: int) -> str:
        return f"{prefix}-{mix64((n + self._key) & _MASK):016x}"


def employee_id(i: int) -> str:
    return f"e{10001 + i}"


def subject_id(i: int) -> str:
    return f"c-{i:07d}"
