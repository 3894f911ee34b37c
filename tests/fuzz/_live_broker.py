"""What the property tests of the real daemon against the real broker draw and check.

A case is an organisation (tests.fuzz._scenarios) whose events get times spread from seconds to
decades (1970..2099) in chunks produced one after the other, each partition in its own order
(time order, disorder within ``lateness``, or any order), some records produced twice, a stray
dated far ahead now and then, an idle pause (or none) after each chunk and perhaps a kill -9 of
the daemon. What the daemon alerts is compared with ``watchdog replay`` of the same events.
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
import yaml
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from tests.fuzz._scenarios import EVENTS_OVER, KEY, scenarios, unique_ids
from tests.fuzz._support import grouped_times

__all__ = ["KEY", "Case", "broker_cases", "comparable", "may_be_late", "replayed"]
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.engine.engine import Engine
from watchdog.files.jsonl import RejectedWriter
from watchdog.policy import load_policy
from watchdog.replay import replay
from watchdog.rules import default_rules

LAST = 4102444799.0  # 2099-12-31T23:59:59Z, the latest time the decoder accepts
DAY = 86400.0
MIN_EVENTS = 8
# the end of a chunk on each partition: invalid, so it changes no alert, and counted by the
# daemon (watchdog_events_invalid_total) once read: every partition read to its end
SENTINEL = b"{not json: end of a chunk"


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


@dataclass
class Case:
    sc: dict[str, Any]
    docs: list[bytes]  # event i's document, with its drawn time
    times: list[float]
    partitions: int
    keyed: bool  # key = user.id (else no key)
    lateness: float
    future: float
    # per chunk: the records in production order, (event index, partition); a copy of an
    # event is a second record with the same document
    chunks: list[list[tuple[int, int]]]
    pauses: list[bool]  # after chunk k: wait until read and idle (else go straight on)
    order: str  # "sorted" | "bounded" | "any": the disorder within a partition
    kill_after: int | None  # kill -9 after this chunk was produced, then restart
    strays: set[int]  # events dated far ahead of their chunk
    copies: int = 0
    notes: list[str] = field(default_factory=list)

    def records(self) -> int:
        return sum(len(c) for c in self.chunks)


def _bounded(draw: st.DrawFn, idx: list[int], times: list[float], lateness: float) -> list[int]:
    """``idx`` (in time order) with neighbours swapped where less than ``lateness`` apart: each
    event arrives after no event more than ``lateness`` later than it."""
    out = list(idx)
    for _ in range(draw(st.integers(0, 2 * len(out)))):
        if len(out) < 2:
            break
        k = draw(st.integers(0, len(out) - 2))
        a, b = out[k], out[k + 1]
        if abs(times[a] - times[b]) < lateness:
            # the one that moves back must stay within lateness of every earlier arrival
            cand = [*out[:k], b, a, *out[k + 2:]]
            if _within(cand, times, lateness):
                out = cand
    return out


def _within(order: list[int], times: list[float], lateness: float) -> bool:
    high = float("-inf")
    for i in order:
        if times[i] < high - lateness:
            return False
        high = max(high, times[i])
    return True


@st.composite
def broker_cases(draw: st.DrawFn, max_events: int = 24, kill: bool = True,
                 partitions: int | None = None) -> Case:
    """A case; ``partitions``: that many (MQTT: one stream), else one to three."""
    sc = unique_ids(draw(scenarios(max_events=max_events)))
    # at least eight events: room for strays and chunks (the budget is a handful of examples)
    pad = draw(st.lists(EVENTS_OVER[3600.0], min_size=max(0, MIN_EVENTS - len(sc["events"])),
                        max_size=max(0, MIN_EVENTS - len(sc["events"]))))
    sc["events"] = [*sc["events"], *({**doc, "event": {**doc["event"], "id": f"pad-{k}"}}
                                     for k, doc in enumerate(pad))]
    n = len(sc["events"])
    partitions = partitions or draw(st.integers(1, 3))
    keyed = draw(st.booleans())
    # (not 0: two events of the very same time on two partitions would be ordered by arrival)
    lateness = draw(st.sampled_from((1.0, 60.0, 3600.0)))
    future = draw(st.sampled_from((600.0, 3600.0, DAY)))
    order = draw(st.sampled_from(("sorted", "bounded", "bounded", "any")))
    groups = draw(st.sampled_from((1, 2, 2, 3, 3)))
    span = draw(st.sampled_from((60.0, 3600.0, 6 * 3600.0)))
    starts, group, times = grouped_times(draw, n, groups, span)
    users = [str(doc["user"]["id"]) for doc in sc["events"]]
    if keyed:  # as Kafka's partitioner would: one account on one partition
        parts = [zlib.crc32(u.encode()) % partitions for u in users]
    else:
        parts = [draw(st.integers(0, partitions - 1)) for _ in range(n)]
    chunks: list[list[tuple[int, int]]] = []
    copies = 0
    for g in range(groups):
        queues: dict[int, list[int]] = {}
        for p in range(partitions):
            idx = sorted((i for i in range(n) if group[i] == g and parts[i] == p),
                         key=lambda i: times[i])
            if order == "bounded":
                idx = _bounded(draw, idx, times, lateness)
            elif order == "any":
                idx = draw(st.permutations(idx))
            # a redelivery: the same record again, within the next three of its partition
            with_copies = list(idx)
            for i in idx:
                if draw(st.integers(0, 9)) == 0:
                    at = with_copies.index(i) + 1 + draw(st.integers(0, 3))
                    with_copies.insert(min(at, len(with_copies)), i)
                    copies += 1
            if with_copies:
                queues[p] = with_copies
        chunk: list[tuple[int, int]] = []
        while queues:  # the partitions interleaved anyhow
            p = draw(st.sampled_from(sorted(queues)))
            chunk.append((queues[p].pop(0), p))
            if not queues[p]:
                del queues[p]
        chunks.append(chunk)
    # strays: at most two, never among the first four arrivals, four apart at least (the
    # present is the lower median of five arrivals); each far ahead of its chunk
    arrival = [i for chunk in chunks for i, _ in chunk]
    strays: dict[int, float] = {}
    for _ in range(draw(st.sampled_from((0, 1, 1, 2)))):
        free = [k for k in range(4, len(arrival))
                if arrival[k] not in strays
                and all(abs(k - arrival.index(s)) > 4 for s in strays)]
        if not free:
            break
        i = arrival[draw(st.sampled_from(free))]
        lo = starts[group[i]] + span + future + 1
        if lo >= LAST:
            continue
        strays[i] = draw(st.one_of(st.floats(lo, min(lo + 2 * DAY, LAST)),
                                   st.floats(lo, LAST), st.just(LAST)))
    for i, t in strays.items():
        times[i] = t
    pauses = [draw(st.sampled_from((True, True, False))) for _ in range(groups)]
    kill_after = draw(st.sampled_from((None, None, None, *range(groups)))) if kill else None
    docs = [msgspec.json.encode({**doc, "@timestamp": stamp(times[i])})
            for i, doc in enumerate(sc["events"])]
    return Case(sc, docs, times, partitions, keyed, lateness, future, chunks, pauses, order,
                kill_after, set(strays), copies)


def user_key(doc: bytes) -> bytes:
    return str(orjson.loads(doc)["user"]["id"]).encode()


# -- what replay says ---------------------------------------------------------------------------
def write_policy(case: Case, path: Path) -> Path:
    path.write_text(yaml.safe_dump(case.sc["policy"], allow_unicode=True))
    return path


def comparable(lines: list[bytes]) -> set[bytes]:
    """Alerts without ``detected_at`` (wall time), as sorted-key JSON."""
    out = set()
    for raw in lines:
        doc = orjson.loads(raw)
        doc.pop("detected_at", None)
        out.add(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    return out


def replayed(case: Case, policy: Path, tmp: Path) -> set[bytes]:
    """``watchdog replay`` over the events (each once) in a file in event-time order, with the
    directory and the subject register from files, as the command reads them."""
    order = sorted(range(len(case.docs)), key=lambda i: case.times[i])
    path = tmp / "events.jsonl"
    path.write_bytes(b"".join(case.docs[i] + b"\n" for i in order))
    state = {}
    for name in ("directory", "subjects"):
        state[name] = str(tmp / f"{name}.jsonl")
        Path(state[name]).write_bytes(b"".join(msgspec.json.encode(d) + b"\n"
                                               for d in case.sc[name]))
    out = io.BytesIO()
    rejected = RejectedWriter(tmp / "rejected.jsonl")
    engine = Engine(load_policy(str(policy)), Pseudonymizer(KEY), default_rules())
    replay(str(path), out, engine, rejected=rejected, **state)
    rejected.close()
    assert rejected.count == 0
    return comparable(out.getvalue().splitlines())


def may_be_late(case: Case) -> int:
    """An upper bound of the events the daemon may process late: only one that arrives after
    an event later than it (not a stray held ahead) can be."""
    strays = case.strays
    n = 0
    high = float("-inf")
    seen: set[int] = set()
    for chunk in case.chunks:
        for i, _ in chunk:
            if i in seen:
                continue
            seen.add(i)
            if case.times[i] < high:
                n += 1
            if i not in strays:
                high = max(high, case.times[i])
    return n


def process_settings(default_examples: int) -> settings:
    """Hypothesis settings for a property run against real processes: a handful of examples
    (``WATCHDOG_LIVE_EXAMPLES``), no deadline, and no shrinking unless
    ``WATCHDOG_LIVE_SHRINK`` is set (it re-runs processes for minutes; a failure prints its
    blob)."""
    examples = int(os.environ.get("WATCHDOG_LIVE_EXAMPLES", str(default_examples))
                   or default_examples)
    phases = tuple(Phase) if os.environ.get("WATCHDOG_LIVE_SHRINK") else (
        Phase.explicit, Phase.reuse, Phase.generate)
    return settings(max_examples=examples, deadline=None, database=None, print_blob=True,
                    phases=phases,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])
