"""The manifest: an append-only, hash-chained list of what the archive holds.

Each writer (a daemon instance, an ``archive write`` run) keeps its own chain, one object per
entry, ``_manifest/<writer>/<seq>.json`` (one object each, so that it works on S3, whose objects
cannot be appended to, and under S3 Object Lock, which forbids rewriting them)::

    {"at":..,"op":"segments","prev":"<hash of entry seq-1>","segments":[..],"seq":n,
     "writer":"..","hash":"<sha256 of the entry without its hash, keys sorted>"}

``op`` is ``segments`` (finished segments: path, dataset, day, rows, bytes, sha256, first and
last event time), ``drop`` (retention removed whole day partitions: which segments and why) or
``compact`` (one partition's segments, ``replaces``, rewritten as ``segments``: see
:mod:`.compact`).
The head, ``_manifest/<writer>.head`` (``{"seq":n,"hash":..}``), is replaced after each entry:
it catches a chain whose last entries were removed together with their segments. Keep a copy
elsewhere; whoever can rewrite every copy of the head can rewrite history (the chain is unkeyed).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from watchdog.archive.datasets import MANIFEST_DIR
from watchdog.archive.store import Store

ZERO = "0" * 64
_WRITER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ENTRY = re.compile(r"^(\d{12})\.json$")


def stamp(t: datetime) -> str:
    """The manifest's form of a time (RFC 3339 UTC, microseconds), which sorts as text."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_writer(writer: str) -> str:
    if not _WRITER.match(writer):
        raise ValueError(f"archive writer id {writer!r}: letters, digits, '.', '_', '-' only")
    return writer


def entry_hash(body: dict[str, Any]) -> str:
    doc = {k: v for k, v in body.items() if k != "hash"}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def entry_path(writer: str, seq: int) -> str:
    return f"{MANIFEST_DIR}/{writer}/{seq:012d}.json"


def head_path(writer: str) -> str:
    return f"{MANIFEST_DIR}/{writer}.head"


@dataclass(frozen=True, slots=True)
class Segment:
    path: str
    dataset: str
    day: str
    rows: int
    bytes: int
    sha256: str
    first: str  # RFC 3339, earliest event time in it
    last: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "dataset": self.dataset, "day": self.day, "rows": self.rows,
                "bytes": self.bytes, "sha256": self.sha256, "first": self.first,
                "last": self.last}


@dataclass
class Chain:
    """One writer's chain as read: its entries in order, and what is wrong with it."""

    writer: str
    entries: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # the entry the read started after (a checkpoint's tip): entries holds only those after it
    base: tuple[int, str] = (0, ZERO)
    count: int = 0  # entries read (also when they were handed on, not kept: read_chain)
    last: tuple[int, str] | None = None  # the last entry read (number, hash)

    @property
    def tip(self) -> tuple[int, str]:
        if self.last is not None:
            return self.last
        if not self.entries:
            return self.base
        last = self.entries[-1]
        return int(last["seq"]), str(last["hash"])


def heads(store: Store) -> dict[str, int]:
    """Each writer's last entry number, from the heads alone (one listing of the manifest's top
    level and one read per writer: what a writer checks before each flush)."""
    out: dict[str, int] = {}
    for rel in store.listdir(MANIFEST_DIR):
        name = rel.rsplit("/", 1)[-1]
        if not name.endswith(".head"):
            continue
        try:
            out[name[: -len(".head")]] = int(orjson.loads(store.read_bytes(rel))["seq"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # being replaced, or broken (``verify`` says so): the next look
    return out


def read_entry(store: Store, writer: str, seq: int) -> dict[str, Any] | None:
    """One entry of ``writer``'s chain, unchecked (``verify`` checks chains); None if absent or
    unreadable."""
    try:
        doc = orjson.loads(store.read_bytes(entry_path(writer, seq)))
    except (OSError, orjson.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def writers(store: Store) -> list[str]:
    names = set()
    for rel in store.listdir(MANIFEST_DIR, recursive=True):
        parts = rel.split("/")
        if len(parts) == 3:
            names.add(parts[1])
        elif len(parts) == 2 and parts[1].endswith(".head"):
            names.add(parts[1][: -len(".head")])
    return sorted(names)


READ_BATCH = 2000  # entries read at once (a daemon's chain grows by 8,640 a day)


def read_chain(store: Store, writer: str,
               on_entries: Callable[[list[dict[str, Any]]], None] | None = None) -> Chain:
    """Every entry of ``writer``'s chain, checked: numbering, hashes, links, head. With
    ``on_entries``, the entries are handed to it in batches, in order, and not kept (``verify``
    of a long history: a month of a daemon's entries is ~340 MiB as Python objects)."""
    chain = Chain(writer)
    files = store.listdir(f"{MANIFEST_DIR}/{writer}")
    prev, expect = ZERO, 1
    batch: list[dict[str, Any]] = []
    for rel, raw in _read_in_batches(store, files):
        name = rel.rsplit("/", 1)[-1]
        m = _ENTRY.match(name)
        if not m:
            chain.problems.append(f"manifest {writer}: unexpected file {rel}")
            continue
        seq = int(m[1])
        while expect < seq:
            chain.problems.append(f"manifest {writer}: entry {expect} was removed")
            expect += 1
        if raw is None:  # listed, then gone or unreadable
            chain.problems.append(f"manifest {writer}: entry {seq} could not be read")
            prev, expect = "?", seq + 1
            continue
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            chain.problems.append(f"manifest {writer}: entry {seq} is not JSON (changed)")
            prev, expect = "?", seq + 1
            continue
        if not isinstance(doc, dict) or doc.get("hash") != entry_hash(doc):
            chain.problems.append(f"manifest {writer}: entry {seq} was changed "
                                  "(its hash does not match its content)")
        elif doc.get("seq") != seq:
            chain.problems.append(f"manifest {writer}: entry {seq} holds entry "
                                  f"{doc.get('seq')} (reordered or moved)")
        elif prev != "?" and doc.get("prev") != prev:
            chain.problems.append(f"manifest {writer}: entry {seq} does not follow entry "
                                  f"{seq - 1} (an entry was replaced, removed or reordered)")
        if on_entries is None:
            chain.entries.append(doc)
        else:
            batch.append(doc)
            if len(batch) >= READ_BATCH:
                on_entries(batch)
                batch = []
        chain.count += 1
        prev, expect = str(doc.get("hash")), seq + 1
        said = doc.get("seq")
        chain.last = (said if isinstance(said, int) else seq, prev)
    if batch and on_entries is not None:
        on_entries(batch)
    head = head_path(writer)
    if store.exists(head):
        try:
            h = orjson.loads(store.read_bytes(head))
            hseq, hhash = int(h["seq"]), str(h["hash"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            chain.problems.append(f"manifest {writer}: head is unreadable")
        else:
            seq, tip = chain.tip
            # a crash between an entry and its head leaves the chain one entry ahead
            if hseq > seq and not _grew(store, writer, (seq, tip), (hseq, hhash)):
                chain.problems.append(f"manifest {writer}: entries {seq + 1}..{hseq} were "
                                      "removed (the head records more)")
            elif hseq == seq and hhash != tip:
                chain.problems.append(f"manifest {writer}: entry {seq} differs from the head")
            elif hseq < seq - 1:
                chain.problems.append(f"manifest {writer}: the head is behind the chain "
                                      f"({hseq} < {seq})")
    elif chain.entries:
        chain.problems.append(f"manifest {writer}: head missing")
    return chain


def entries_after(store: Store, writer: str, base: tuple[int, str]
                  ) -> tuple[list[dict[str, Any]], bool]:
    """``writer``'s entries after ``base`` (number, hash), each following the one before (its
    number, its link, its own hash), up to the first absent one; and whether every entry read
    did follow (False: the list stops before the first that does not)."""
    out: list[dict[str, Any]] = []
    seq, prev = base
    while (entry := read_entry(store, writer, seq + 1)) is not None:
        if (entry.get("prev") != prev or entry.get("seq") != seq + 1
                or entry.get("hash") != entry_hash(entry)):
            return out, False
        out.append(entry)
        seq, prev = seq + 1, str(entry["hash"])
    return out, True


def _grew(store: Store, writer: str, tip: tuple[int, str], head: tuple[int, str]) -> bool:
    """Whether the entries after ``tip`` up to the head's are there, each following the one
    before and the head's the head's hash: the chain grew while it was read (a live writer's
    flushes during a long ``verify``), rather than lost its end."""
    entries, _linked = entries_after(store, writer, tip)
    n = head[0] - tip[0]
    return len(entries) >= n and entries[n - 1].get("hash") == head[1]


def tip_of(store: Store, writer: str) -> tuple[int, str]:
    """The chain's last entry (number, hash) from its head and the entries after it (a crash
    between an entry and its head leaves one): a few reads, not the whole chain (a daemon's
    chain grows by an entry per flush). Without a readable head, the whole chain is read."""
    try:
        h = orjson.loads(store.read_bytes(head_path(writer)))
        seq, tip = int(h["seq"]), str(h["hash"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return read_chain(store, writer).tip
    last = read_entry(store, writer, seq)
    if last is None or last.get("hash") != tip:
        return read_chain(store, writer).tip  # the head disagrees: take the chain's word
    while (after := read_entry(store, writer, seq + 1)) is not None:
        seq, tip = seq + 1, str(after.get("hash"))
    return seq, tip


def _read_in_batches(store: Store, files: list[str]) -> Iterator[tuple[str, bytes | None]]:
    for i in range(0, len(files), READ_BATCH):
        part = files[i:i + READ_BATCH]
        yield from zip(part, store.read_many(part), strict=True)


class ManifestWriter:
    """Appends entries to one writer's chain (one process per writer id at a time)."""

    def __init__(self, store: Store, writer: str) -> None:
        self.store = store
        self.writer = check_writer(writer)
        self.seq, self.prev = tip_of(store, self.writer)

    def append(self, op: str, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "seq": self.seq + 1, "prev": self.prev, "writer": self.writer, "op": op,
            "at": stamp(datetime.now(UTC)), **fields}
        body["hash"] = entry_hash(body)
        self.store.write_bytes(entry_path(self.writer, body["seq"]),
                               orjson.dumps(body, option=orjson.OPT_SORT_KEYS) + b"\n")
        self.seq, self.prev = body["seq"], body["hash"]
        self.store.write_bytes(head_path(self.writer),
                               orjson.dumps({"seq": self.seq, "hash": self.prev}) + b"\n")
        return body


@dataclass
class Contents:
    """What every chain says the archive holds now: live segments, dropped and compacted ones."""

    segments: dict[str, Segment] = field(default_factory=dict)
    # path -> (writer, seq) of the drop / compaction entry that removed it
    dropped: dict[str, tuple[str, int]] = field(default_factory=dict)
    compacted: dict[str, tuple[str, int]] = field(default_factory=dict)
    chains: list[Chain] = field(default_factory=list)
    # paths removed (dropped, replaced) whose segment no entry read so far records: a drop
    # or compaction written after another chain's entry that was read before it (kept by
    # checkpoints, see :mod:`.checkpoint`, so that the segment is not taken for live later)
    unmatched: set[str] = field(default_factory=set)

    def of(self, dataset: str, first: str | None = None, last: str | None = None
           ) -> list[Segment]:
        """Live segments of ``dataset`` that may hold rows in [first, last] (RFC 3339)."""
        out = []
        for s in self.segments.values():
            if s.dataset != dataset:
                continue
            if first is not None and s.last < first:
                continue
            if last is not None and s.first > last:
                continue
            out.append(s)
        return sorted(out, key=lambda s: (s.first, s.path))


def contents(store: Store) -> Contents:
    """What every chain says, read whole (``verify``; readers start from a checkpoint:
    :func:`watchdog.archive.checkpoint.contents`)."""
    out = Contents()
    for w in writers(store):
        out.chains.append(read_chain(store, w))
    apply(out, [e for chain in out.chains for e in chain.entries])
    return out


def apply(out: Contents, entries: Iterable[dict[str, Any]]) -> None:
    """Apply entries (of any chains, in any order) to ``out``: every segment added (a
    compaction's new ones too), then every segment a compaction replaced or a drop dropped
    removed, with ``out.unmatched``. Segment paths are unique and never reused, so these phases
    make the result independent of the order in which chains are read, and a compaction of an
    earlier compaction's output works. A removal whose segment no entry read so far records
    stays in ``out.unmatched`` (a drop or compaction read before the entry of the segment it
    names, in another chain): applied again when that entry is read; a path already replaced
    or dropped in ``out`` is not added again."""
    added: set[str] = set()
    drops, compacts = [], []
    for entry in entries:
        op = entry.get("op")
        if op in ("segments", "compact"):
            for s in entry.get("segments", ()):
                added.add(s["path"])
                if s["path"] not in out.compacted and s["path"] not in out.dropped:
                    out.segments[s["path"]] = Segment(**s)
            if op == "compact":
                compacts.append(entry)
        elif op == "drop":
            drops.append(entry)
    removed = set(out.unmatched)
    for entry in compacts:
        ref = (str(entry.get("writer")), int(entry.get("seq", 0)))
        for s in entry.get("replaces", ()):
            removed.add(s["path"])
            out.compacted[s["path"]] = ref
    for entry in drops:
        ref = (str(entry.get("writer")), int(entry.get("seq", 0)))
        for s in entry.get("segments", ()):
            removed.add(s["path"])
            out.dropped[s["path"]] = ref
    known = set(out.segments)
    for path in removed:
        out.segments.pop(path, None)
    out.unmatched = {p for p in removed if p not in known and p not in added}
