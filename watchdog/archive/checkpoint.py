"""Manifest checkpoints: what the chains say the archive holds as of each chain's tip, in one
object, so that opening an archive reads the entries written since, not every entry ever.

Why: a daemon appends a manifest entry per flush (8,640 a day at ``flush_seconds: 10``), and
every start, ``subject-report``, ``evidence`` and ``replay --archive`` read them all, one
object each (an S3 request each: 6.3 ms an entry against moto on this machine, so a day of
a daemon's history cost ~55 s at every start, a year hours). As Delta Lake's checkpoints do,
a checkpoint only saves reading: the chains stay the record. Readers take the newest
checkpoint whose own hash holds and whose tips are still in their chains (each tip's entry
is read back), then each chain's entries after its tip, linked entry to entry; anything
else (no checkpoint, a tip that is gone, a broken link) and they read every chain whole.
``archive verify`` reads every chain and names a checkpoint that differs from them.

``_checkpoint/<sum of the tips, 15 digits>-<writer>.json``: names sort by progress (chains
only grow). The writer keeps the newest :data:`KEEP` and deletes older ones (derived data).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from watchdog.archive import manifest as mf
from watchdog.archive.store import Store

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "_checkpoint"
KEEP = 3
EVERY = 500  # entries read past the newest checkpoint before a writer writes another


@dataclass(frozen=True)
class Checkpoint:
    path: str
    tips: dict[str, tuple[int, str]]
    segments: dict[str, mf.Segment]
    unmatched: frozenset[str]


def _digest(body: dict[str, Any]) -> str:
    doc = {k: v for k, v in body.items() if k != "hash"}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def body_of(c: mf.Contents) -> dict[str, Any]:
    """The checkpoint of ``c`` (its chains' tips, live segments and unmatched drops)."""
    tips = {ch.writer: list(ch.tip) for ch in c.chains if ch.tip[0] > 0}
    body: dict[str, Any] = {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "tips": tips,
        "segments": [s.as_dict() for _p, s in sorted(c.segments.items())],
        "unmatched": sorted(c.unmatched)}
    body["hash"] = _digest(body)
    return body


def write(store: Store, c: mf.Contents, writer: str) -> str:
    """Record ``c`` as a checkpoint; the older ones beyond :data:`KEEP` are deleted."""
    body = body_of(c)
    progress = sum(seq for seq, _h in body["tips"].values())
    path = f"{CHECKPOINT_DIR}/{progress:015d}-{mf.check_writer(writer)}.json"
    store.write_bytes(path, orjson.dumps(body, option=orjson.OPT_SORT_KEYS) + b"\n")
    for old in store.listdir(CHECKPOINT_DIR)[:-KEEP]:
        if old != path:
            store.discard(old)  # (another writer may have deleted it first)
    return path


def parse(path: str, raw: bytes) -> Checkpoint | None:
    """The checkpoint stored at ``path``, or None if it is not one (or its hash fails)."""
    try:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict) or doc.get("hash") != _digest(doc):
            return None
        tips = {str(w): (int(t[0]), str(t[1])) for w, t in doc["tips"].items()}
        segs = {s["path"]: mf.Segment(**s) for s in doc["segments"]}
        return Checkpoint(path, tips, segs, frozenset(map(str, doc["unmatched"])))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
        return None


def latest(store: Store) -> Checkpoint | None:
    """The newest readable checkpoint (None if there is none)."""
    for path in reversed(store.listdir(CHECKPOINT_DIR)):
        try:
            ck = parse(path, store.read_bytes(path))
        except OSError:
            continue  # deleted meanwhile by a writer keeping the newest
        if ck is not None:
            return ck
    return None


class _Stale(Exception):
    """The checkpoint does not lead to the chains as they are: read them whole."""


def _after(store: Store, writer: str, base: tuple[int, str]) -> mf.Chain:
    """``writer``'s entries after ``base``, each linked to the one before."""
    seq, prev = base
    if seq:
        entry = mf.read_entry(store, writer, seq)
        if entry is None or entry.get("hash") != prev:
            raise _Stale(f"{writer} entry {seq}")
    entries, linked = mf.entries_after(store, writer, base)
    if not linked:
        raise _Stale(f"{writer} entry {seq + len(entries) + 1}")
    return mf.Chain(writer, base=base, entries=entries)


def contents(store: Store) -> mf.Contents:
    """What the archive holds: the newest checkpoint and the entries written since (or every
    chain whole, :func:`watchdog.archive.manifest.contents`, when that cannot be trusted)."""
    ck = latest(store)
    if ck is None:
        return mf.contents(store)
    out = mf.Contents(segments=dict(ck.segments), unmatched=set(ck.unmatched))
    try:
        for w in sorted(set(ck.tips) | set(mf.heads(store))):
            out.chains.append(_after(store, w, ck.tips.get(w, (0, mf.ZERO))))
    except _Stale as err:
        log.warning("archive checkpoint %s does not lead to the manifest (%s): reading every "
                    "chain", ck.path, err)
        return mf.contents(store)
    mf.apply(out, [e for ch in out.chains for e in ch.entries])
    return out


def since(c: mf.Contents) -> int:
    """Entries ``c`` read past its checkpoint (every entry when it read the chains whole)."""
    return sum(len(ch.entries) for ch in c.chains)


def differences(ck: Checkpoint, upto: mf.Contents, at_tip: dict[tuple[str, str], str]
                ) -> list[str]:
    """What ``ck`` says that the chains do not (``verify``): ``upto`` is the chains' contents
    as of its tips, ``at_tip`` the hash of each chain's entry at its tip."""
    problems = []
    for w, (seq, tip) in ck.tips.items():
        if at_tip.get((ck.path, w)) != tip:
            problems.append(f"checkpoint {ck.path}: manifest {w} entry {seq} is not the one "
                            "it was made at (removed or changed)")
    missing = sorted(set(upto.segments) - set(ck.segments))
    extra = sorted(p for p, s in ck.segments.items() if upto.segments.get(p) != s)
    if missing:
        problems.append(f"checkpoint {ck.path}: omits {len(missing)} live segment(s), e.g. "
                        f"{missing[0]}")
    if extra:
        problems.append(f"checkpoint {ck.path}: holds {len(extra)} segment(s) the manifest "
                        f"does not (or not so), e.g. {extra[0]}")
    return problems
