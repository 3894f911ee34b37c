"""``watchdog archive verify``: every segment against the manifest, and every chain.

Names what happened: a segment changed (its SHA-256 differs), removed (recorded, absent),
reordered or moved (its bytes are another recorded segment's), slipped in (a file no entry
records), left behind (dropped by retention or replaced by a compaction, still present; a
replaced segment that is absent is what a compaction leaves); a manifest entry changed,
removed, reordered, or cut off the end (see :mod:`.manifest`). Rows are not read for that:
the hash covers every byte of a segment. Each checkpoint (:mod:`.checkpoint`) must say what
the chains say as of its tips.

It runs beside live writers, the daemon's retention and compaction: a segment that looks
removed, slipped in or left behind is looked at again once the check is done, against the
entries written since it read the chains (and, for one left behind, after up to
:data:`SETTLE_SECONDS` for the deletes of a compaction or drop under way), and is named only if
that does not explain it.

It also counts ids stored more than once (``copies``: two daemon instances that flushed the
same redelivered event at the same moment). Not a problem: every query reads an id once
(:mod:`.reader`); said so that the stored row counts are not taken for event counts.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from watchdog.archive import checkpoint
from watchdog.archive import manifest as mf
from watchdog.archive.layout import DATASETS, MANIFEST_DIR, parse_segment_path
from watchdog.archive.pending import pending
from watchdog.archive.store import READERS, Store

SETTLE_SECONDS = 20.0  # how long a segment left behind may take to go (deletes under way)


@dataclass
class Report:
    segments: int = 0
    rows: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)
    copies: dict[str, int] = field(default_factory=dict)  # dataset -> rows beyond the first

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha(store: Store, rel: str) -> str | None:
    """The file's SHA-256; None if it is gone since it was listed."""
    h = hashlib.sha256()
    try:
        with store.fs.open_input_stream(store.path(rel)) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def verify(store: Store, *, settle_seconds: float = SETTLE_SECONDS) -> Report:
    report = Report()
    # path -> its problem, for those a writer, compactor or drop beside the check can explain
    suspects: dict[str, str] = {}
    c, checkpoint_problems = _read(store)
    for chain in c.chains:
        report.entries += chain.count
        report.problems.extend(chain.problems)
    report.problems.extend(checkpoint_problems)
    files = [f for ds in DATASETS for f in store.listdir(ds, recursive=True)]
    on_disk = {f: "" for f in files}
    by_sha = {s.sha256: s.path for s in c.segments.values()}
    # a writer whose first flush (or compaction) is under way has a marker and no chain yet
    tips = {w.writer: w.tip[0] for w in c.chains}
    tips.update({rel.rsplit("/", 1)[-1][: -len(".pending")]: 0
                 for rel in store.listdir(MANIFEST_DIR) if rel.endswith(".pending")
                 and rel.rsplit("/", 1)[-1][: -len(".pending")] not in tips})
    in_flight = {p for w, tip in tips.items() for p in pending(store, w, tip) or ()}
    present = [p for p in sorted(c.segments) if p in on_disk]
    with ThreadPoolExecutor(max_workers=READERS) as pool:  # reads wait on I/O, not the GIL
        digests = dict(zip(present, pool.map(lambda p: _sha(store, p), present), strict=True))
    for path in [p for p, d in digests.items() if d is None]:  # deleted since it was listed
        del on_disk[path]
    for path, seg in sorted(c.segments.items()):
        if path not in on_disk:
            suspects[path] = (f"segment {path}: removed (recorded in manifest {{where}}, "
                              "not in the archive)")
            continue
        digest = on_disk[path] = str(digests[path])
        report.segments += 1
        report.rows += seg.rows
        if digest != seg.sha256:
            other = by_sha.get(digest)
            if other is not None:
                report.problems.append(f"segment {path}: holds the bytes of {other} "
                                       "(reordered or moved)")
            else:
                report.problems.append(f"segment {path}: changed (SHA-256 {digest[:16]}.. "
                                       f"recorded {seg.sha256[:16]}..)")
    for path in files:
        if path in c.segments or path in in_flight:
            continue
        if parse_segment_path(path) is None:
            report.problems.append(f"{path}: not a segment of the archive (slipped in)")
        elif path in c.dropped:
            suspects[path] = f"segment {path}: dropped by retention but still present"
        elif path in c.compacted:
            w, seq = c.compacted[path]
            suspects[path] = (
                f"segment {path}: replaced by compaction (manifest {w} entry {seq}) but still "
                "present: re-running archive compact deletes it")
        else:
            suspects[path] = f"segment {path}: recorded in no manifest (slipped in)"
    if suspects:
        named = _settle(store, c, suspects, settle_seconds)
        gone = {p for p in named if p in c.segments}  # recorded, not there: removed
        # which entry recorded each: the chains read again, so only for those still named
        where = _writers_of(store, gone) if gone else {}
        report.problems.extend(suspects[p].replace("{where}", where.get(p, "?")) for p in named)
    if report.ok:  # (a removed segment would fail the query)
        from watchdog.archive.reader import SegmentFormatError

        try:
            report.copies = _copies_now(store, c)
        except SegmentFormatError as err:  # intact, but not for this watchdog to read
            report.problems.append(str(err))
    return report


def _copies_now(store: Store, c: mf.Contents) -> dict[str, int]:
    """:func:`copies` over the segments live now: a compaction beside the check may have
    replaced some of those it read (read again, at most twice more)."""
    import duckdb

    for _ in range(2):
        try:
            return copies(store, c)
        except (duckdb.IOException, FileNotFoundError):
            c = checkpoint.contents(store)
    return copies(store, c)


def _settle(store: Store, c: mf.Contents, suspects: dict[str, str],
            settle_seconds: float) -> list[str]:
    """The paths of ``suspects`` (path -> problem) that what ran beside the check does not
    explain, in order. Read after it: the entries written since its reading of the chains (a flush
    recorded a file seen unrecorded; a compaction or drop removed a segment seen missing),
    then, for a segment left behind, whether it is gone within ``settle_seconds``."""
    since = mf.Contents()
    tips = {ch.writer: ch.tip for ch in c.chains}
    for w in mf.heads(store):
        # only entries that continue the chain as read explain anything (checked in full by
        # the next run, which reads them as part of it)
        entries, _linked = mf.entries_after(store, w, tips.get(w, (0, mf.ZERO)))
        mf.apply(since, entries)
    later = set(since.segments) | set(since.compacted) | set(since.dropped)
    left = {p for p in suspects if p in c.compacted or p in c.dropped}
    deadline = time.monotonic() + settle_seconds
    while left:
        left = {p for p in left if store.exists(p)}
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(min(1.0, settle_seconds))

    def unexplained(path: str) -> bool:
        if path in c.compacted or path in c.dropped:  # left behind: still there after the wait
            return path in left
        return path not in later  # removed or slipped in: no entry since explains it

    return [path for path in suspects if unexplained(path)]


def copies(store: Store, c: mf.Contents) -> dict[str, int]:
    """Per dataset, how many stored rows repeat an id already stored (DuckDB, ids only)."""
    from watchdog.archive.reader import ArchiveQuery

    q = ArchiveQuery(store, contents=c)
    try:
        out = {}
        for ds in DATASETS:
            (extra,) = q.sql("SELECT count(*) - count(DISTINCT id) "  # noqa: S608 (fixed)
                             f"FROM {ds}_stored")[0]
            if extra:
                out[ds] = int(extra)
        return out
    finally:
        q.close()


def _seq(entry: dict[str, Any]) -> int:
    said = entry.get("seq")
    return said if isinstance(said, int) else 0


def _read(store: Store) -> tuple[mf.Contents, list[str]]:
    """Every chain read whole, in batches not kept (a year of a daemon's entries would not fit
    in memory as Python objects): the contents, and what is wrong with each checkpoint (readers
    trust the newest one), each checked against the chains as of its tips."""
    problems, cks = [], []
    for path in store.listdir(checkpoint.CHECKPOINT_DIR):
        ck = checkpoint.parse(path, store.read_bytes(path))
        if ck is None:
            problems.append(f"{path}: not a checkpoint, or changed (its hash does not match)")
        else:
            cks.append(ck)
    c = mf.Contents()
    views = {ck.path: mf.Contents() for ck in cks}
    at_tip: dict[tuple[str, str], str] = {}
    for w in mf.writers(store):
        def feed(batch: list[dict[str, Any]], w: str = w) -> None:
            mf.apply(c, batch)
            for ck in cks:
                seq = ck.tips.get(w, (0, ""))[0]
                upto = [e for e in batch if _seq(e) <= seq]
                mf.apply(views[ck.path], upto)
                for e in upto:
                    if _seq(e) == seq:
                        at_tip[(ck.path, w)] = str(e.get("hash"))
        c.chains.append(mf.read_chain(store, w, feed))
    for ck in cks:
        problems.extend(checkpoint.differences(ck, views[ck.path], at_tip))
    return c, problems


def _writers_of(store: Store, paths: set[str]) -> dict[str, str]:
    """Which entry recorded each of ``paths`` (read again: only when segments are missing)."""
    out: dict[str, str] = {}
    for w in mf.writers(store):
        def feed(batch: list[dict[str, Any]], w: str = w) -> None:
            for entry in batch:
                # the segments an entry added: those of ``segments`` and ``compact`` entries
                if entry.get("op") in ("segments", "compact"):
                    for s in entry.get("segments", ()):
                        if s.get("path") in paths:
                            out.setdefault(s["path"], f"{w} entry {entry.get('seq')}")
        mf.read_chain(store, w, feed)
    return out
