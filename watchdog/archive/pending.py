"""The pending marker: a writer's (or compactor's) segments about to be written, named in
``_manifest/<writer>.pending`` before the first of them is, so that a crash between the segments
and their manifest entry leaves files someone can tell apart from tampering (``verify``) and
delete (the chain's next writer).

One reading for both: a marker that cannot be parsed names nothing. It is written whole (a
rename locally, a PUT on S3), so that means damage, not a crash mid-write; the writer then
deletes it rather than refuse to start (which would stall the daemon's archive, and with it
its commits), and ``verify`` names the files it may have covered as not recorded.
"""

from __future__ import annotations

import logging

import orjson

from watchdog.archive.datasets import MANIFEST_DIR
from watchdog.archive.store import Store

log = logging.getLogger(__name__)


def pending_path(writer: str) -> str:
    return f"{MANIFEST_DIR}/{writer}.pending"


def mark(store: Store, writer: str, seq: int, paths: list[str]) -> None:
    """Name the segments of entry ``seq`` before writing them."""
    store.write_bytes(pending_path(writer), orjson.dumps({"seq": seq, "paths": paths}))


def pending(store: Store, writer: str, tip: int) -> list[str] | None:
    """The segments a marker names past the chain's ``tip`` (written, or being written, and
    not recorded); None when there is no marker or it cannot be parsed."""
    rel = pending_path(writer)
    return _named(rel, store.read_or_none(rel), tip)


def _named(rel: str, data: bytes | None, tip: int) -> list[str] | None:
    if data is None:
        return None
    try:
        doc = orjson.loads(data)
        seq, paths = int(doc.get("seq", 0)), doc.get("paths", ())
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise TypeError("paths is not a list of names")
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as err:
        log.warning("archive pending marker %s unreadable (%s): it names nothing", rel,
                    str(err)[:100])
        return None
    return paths if seq > tip else []


def clean_pending(store: Store, writer: str, tip: int) -> None:
    """Delete the segments of a flush (or compaction) that crashed before its manifest entry
    (those of a marker past the chain's ``tip``), then the marker: one read of the marker
    (none there: nothing else), as every writer and compactor does at start."""
    rel = pending_path(writer)
    data = store.read_or_none(rel)
    if data is None:
        return
    for path in _named(rel, data, tip) or ():
        store.discard(path)
    store.delete(rel)


def done(store: Store, writer: str) -> None:
    """The entry is written: the marker has served."""
    store.delete(pending_path(writer))
