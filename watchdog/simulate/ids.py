"""Identifiers: stable seeds, unique event ids, account and subject ids."""

from __future__ import annotations

import hashlib

MASK = (1 << 64) - 1
INJECTED = 1 << 63  # event-id namespace of planned (injected or benign) events


def derive(*parts: object) -> int:
    """A stable 64-bit seed from any labels (not ``hash()``: that changes per process)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


ODD = 0x9E3779B97F4A7C15  # odd: multiplying by it mod 2**64 is a bijection


class EventIds:
    """Event ids that look random but are unique: ``prefix-<hex>`` where the hex is a
    bijection of ``n`` (add a key, multiply by an odd constant, xor-shift), so distinct
    ``n`` give distinct ids."""

    __slots__ = ("key",)

    def __init__(self, seed: int) -> None:
        self.key = derive("event-ids", seed)

    def make(self, prefix: str, n: int) -> str:
        z = ((n + self.key) * ODD) & MASK
        return f"{prefix}-{z ^ (z >> 29):016x}"


def employee_id(i: int) -> str:
    return f"e{10001 + i}"


def subject_id(i: int) -> str:
    return f"c-{i:07d}"
