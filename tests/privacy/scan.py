"""Find raw identifiers (subject ids, ...) in text the watchdog emits: alerts, logs, metrics.

Reusable by any test that must show personal identifiers do not leak::

    from tests.privacy.scan import scan_for_ids
    assert scan_for_ids(metrics_text.splitlines(), subject_ids) == []

An occurrence counts when it is not glued to a longer identifier: ``c-0000233`` is found in
``subject c-0000233 restricted`` and in ``"c-0000233"``, but not in ``c-00002331`` or
``xc-0000233`` (another id, not this one). Pass ``boundary=False`` to count every substring.
"""

from __future__ import annotations

from collections.abc import Iterable

# characters that continue an identifier: an id next to one of these is part of another token
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _glued(text: str, start: int, end: int, ident: str) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    # only a word character continuing a word character glues (an id ending in "-" is not
    # extended by a letter after it in the same way)
    return bool((before in _WORD and before and ident[0] in _WORD)
                or (after in _WORD and after and ident[-1] in _WORD))


def scan_for_ids(texts: Iterable[str], ids: set[str], *, boundary: bool = True,
                 context: int = 40) -> list[str]:
    """Every occurrence of one of ``ids`` in ``texts``, as ``"text N: 'id' in …context…"``.

    ``texts`` is any iterable of strings (lines of a log, alert documents, a metrics page);
    ``N`` is its 1-based position. Empty ids are ignored. Cost: one C-level substring search
    per id and text, fine for thousands of ids over megabytes.
    """
    wanted = sorted({i for i in ids if i}, key=lambda i: (-len(i), i))
    found: list[str] = []
    for n, text in enumerate(texts, 1):
        for ident in wanted:
            start = text.find(ident)
            while start >= 0:
                end = start + len(ident)
                if not (boundary and _glued(text, start, end, ident)):
                    lo, hi = max(0, start - context), min(len(text), end + context)
                    found.append(f"text {n}: {ident!r} in …{text[lo:hi]}…")
                    break  # one report per id and text is enough
                start = text.find(ident, start + 1)
    return found
