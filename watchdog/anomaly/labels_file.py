"""The labels file on disk: a hash-chained audit trail of label entries (I/O).

The file has the layout of the alert audit trail (:mod:`watchdog.audit`: one JSON line per
entry, each chained to the one before, a head ``FILE.head`` beside it), so
``watchdog verify-audit LABELS`` proves that no label was altered, removed or slipped in;
each entry is a label (:meth:`watchdog.anomaly.labels.Label.to_entry`). Entries carry alert
ids and pseudonyms, never an account's or a data subject's id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from watchdog.anomaly.labels import KIND, Label, Labels
from watchdog.audit import AuditTrail, verify
from watchdog.audit.chain import parse


def read_labels(path: str | Path, *, missing_ok: bool = False) -> Labels:
    """The labels in ``path``; ValueError (one line) when the file is not a labels trail, its
    chain is broken, or an entry is not a label. ``missing_ok``: an absent file is no labels
    (the daemon's, before the first ``watchdog label``)."""
    p = Path(path)
    if not p.exists():
        if missing_ok:
            return Labels.empty()
        raise ValueError(f"labels {p}: no such file")
    if p.is_dir():
        raise ValueError(f"labels {p}: a directory, not a labels file")
    result = verify(p, require_head=False)
    if not result.ok:
        raise ValueError(f"labels {p}: {result.problem}")
    return Labels(_entries(p))


def _entries(p: Path) -> Iterator[Label]:
    with p.open("rb") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip(b"\n")
            if not line:
                continue
            rec = parse(line)
            if isinstance(rec, str):
                raise ValueError(f"labels {p}: line {n}: {rec}")
            doc = orjson.loads(rec.alert)
            if doc.get("kind") != KIND:
                raise ValueError(f"labels {p}: line {n}: not a label (kind "
                                 f"{str(doc.get('kind'))[:40]!r})")
            try:
                yield Label.from_entry(doc)
            except ValueError as err:
                raise ValueError(f"labels {p}: line {n}: {err}") from None


def append_label(path: str | Path, label: Label) -> int:
    """Append ``label`` (durable on return); returns its sequence number. Raises
    ``watchdog.audit.AuditError`` or OSError."""
    with AuditTrail(path, owner=False) as trail:  # analysts may label at the same time
        return trail.append_entry(label.to_entry())


def find_alert(alert_id: str, files: Sequence[str | Path]) -> dict[str, Any] | None:
    """The alert document with ``alert_id`` in alerts JSONL files or alert audit trails (the
    last one found: a redelivered alert is the same alert)."""
    needle = orjson.dumps(alert_id)
    found: dict[str, Any] | None = None
    for name in files:
        with Path(name).open("rb") as f:
            for raw in f:
                if needle not in raw:
                    continue
                try:
                    doc = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(doc, dict) and isinstance(doc.get("alert"), dict):
                    doc = doc["alert"]  # an audit trail's line
                if isinstance(doc, dict) and doc.get("alert_id") == alert_id:
                    found = doc
    return found


__all__: Sequence[str] = ("append_label", "find_alert", "read_labels")
