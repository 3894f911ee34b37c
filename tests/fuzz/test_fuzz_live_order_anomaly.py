"""Live equals replay with the anomaly stage: the daemon's pipeline against ``watchdog replay``.

The same property as :mod:`tests.fuzz.test_fuzz_live_order`, for the stage the rules feed: the
insider scenario (three days of office work, then one account copying customers to a USB stick
at night; :func:`tests.anomaly.conftest.insider_docs`) goes through a
:class:`~watchdog.daemon.pipeline.Pipeline` with the anomaly stage loaded from the tiny model as
the daemon loads it (:func:`watchdog.anomaly.stage.load_stage`), delivered as Kafka would: over
1-4 partitions (keyed by account, as the producers key them, or anyhow), each partition in
order, the partitions interleaved in batches of any size, some records delivered twice (a
producer's retry: a new offset; a fetch again: the same offsets), partitions marked idle once
caught up, every partition at pauses where everything produced so far was delivered (the
pipeline flushes), and the stage drained (``tick``) at any point. Every alert (the rules', the
``anomaly`` window alerts and the person-level risk alerts, with their scores and explanations)
must be the one replay raises over the same events with the same stage.
"""

from __future__ import annotations

import io
import itertools
import zlib
from pathlib import Path
from typing import Any

import msgspec
import orjson
from hypothesis import event, given, note
from hypothesis import strategies as st

from tests.anomaly.conftest import insider_docs, make_engine, write_jsonl
from tests.daemon.helpers import CollectAlerts, NoDeadLetters, QuietLog
from tests.fuzz._live_broker import comparable
from tests.fuzz._support import fuzz
from watchdog.alerts.model import encode_alert
from watchdog.anomaly.stage import load_stage
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.base import Raw
from watchdog.files.jsonl import RejectedWriter
from watchdog.replay import replay

DOCS = insider_docs()
RAWS = [msgspec.json.encode(d) for d in DOCS]
USERS = [d["user"]["id"] for d in DOCS]
IDS = [d["event"]["id"] for d in DOCS]
STAMPS = [d["@timestamp"] for d in DOCS]  # one format: in time order as strings
assert sorted(STAMPS) == STAMPS
MAX_STEPS = 80  # batches drawn one by one; past that, the rest of a segment in one batch each


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any]:
    n = len(DOCS)
    n_parts = draw(st.integers(1, 4))
    keyed = draw(st.booleans())
    salt = draw(st.integers(0, 2**16))
    # keyed: by user.id, as the daemon's producers key them; else anyhow (by a salted hash)
    part = [zlib.crc32((u if keyed else f"{salt}:{e}").encode()) % n_parts
            for u, e in zip(USERS, IDS, strict=True)]
    # pauses: everything produced so far delivered, every partition caught up and quiet; cut
    # between two event times only (an event of the very time already released is late, by
    # design: the lateness is what a quiet system waits for)
    cuts = set()
    for k in draw(st.lists(st.integers(1, n - 1), max_size=4)):
        while k < n and STAMPS[k] == STAMPS[k - 1]:
            k += 1
        if k < n:
            cuts.add(k)
    bounds = [0, *sorted(cuts), n]
    steps: list[tuple[Any, ...]] = []
    copies = 0
    for lo, hi in itertools.pairwise(bounds):
        queues: dict[int, list[int]] = {}
        for i in range(lo, hi):
            queues.setdefault(part[i], []).append(i)
        # a producer's retry: the record again, a few records later on its partition
        for _ in range(draw(st.integers(0, 3))):
            p = draw(st.sampled_from(sorted(queues)))
            q = queues[p]
            at = draw(st.integers(0, len(q) - 1))
            q.insert(min(len(q), at + 1 + draw(st.integers(0, 3))), q[at])
            copies += 1
        while queues:
            p = draw(st.sampled_from(sorted(queues)))
            size = 2 ** draw(st.integers(0, 10)) if len(steps) < MAX_STEPS else len(queues[p])
            steps.append(("batch", p, queues[p][:size]))
            del queues[p][:size]
            if not queues[p]:
                del queues[p]
            if draw(st.integers(0, 9)) == 0:  # the same records fetched again
                steps.append(("again", p))
            if draw(st.integers(0, 3)) == 0:
                steps.append(("tick",))
            drained = [q for q in range(n_parts) if q not in queues]
            if drained and draw(st.integers(0, 4)) == 0:  # caught up for now: quiet
                steps.append(("idle", draw(st.lists(st.sampled_from(drained), min_size=1,
                                                    unique=True))))
        steps.append(("idle", list(range(n_parts))))
        if draw(st.booleans()):
            steps.append(("tick",))
    steps.pop()  # (no pause after the last segment: the shutdown flushes it)
    return {"parts": n_parts, "keyed": keyed, "steps": steps, "pauses": len(cuts),
            "copies": copies, "lateness": draw(st.sampled_from((1.0, 60.0, 300.0)))}


def _replayed(model: Path, tmp: Path) -> set[bytes]:
    engine = make_engine()
    stage = load_stage(model, engine)
    out = io.BytesIO()
    rejected = RejectedWriter(tmp / "rejected.jsonl")
    replay(str(write_jsonl(tmp / "events.jsonl", DOCS)), out, engine, stages=[stage],
           rejected=rejected)
    rejected.close()
    assert rejected.count == 0
    return comparable(out.getvalue().splitlines())


def _live(model: Path, case: dict[str, Any]) -> tuple[set[bytes], Pipeline]:
    engine = make_engine()
    stage = load_stage(model, engine)  # as the daemon does (cli.load_stages), no observer
    delivery = CollectAlerts()
    pipeline = Pipeline(engine, delivery, NoDeadLetters(), Metrics(),  # type: ignore[arg-type]
                        QuietLog(), stages=[stage], lateness=case["lateness"])
    parts = range(case["parts"])
    for p in parts:
        pipeline.open_partition(p, 0)
    offsets = dict.fromkeys(parts, 0)
    last: dict[int, list[Raw]] = {}
    for step in case["steps"]:
        if step[0] == "batch":
            _, p, idx = step
            recs = [Raw(RAWS[i], offsets[p] + k, p) for k, i in enumerate(idx)]
            offsets[p] += len(recs)
            last[p] = recs
            pipeline.ingest(p, recs, "access-logs")
        elif step[0] == "again":
            pipeline.ingest(step[1], last[step[1]], "access-logs")
        elif step[0] == "tick":
            pipeline.tick()
        else:
            for p in step[1]:
                pipeline.mark_idle(p)
    pipeline.flush()  # shutdown, not in a backlog
    return comparable([encode_alert(a) for a in delivery.alerts]), pipeline


def _is_risk(raw: bytes) -> bool:
    doc = orjson.loads(raw)
    return doc["rule"] == "anomaly" and (doc.get("explanation") or {}).get("kind") == "risk"


def test_the_daemon_gives_the_anomaly_alerts_replay_gives(tiny_model: Path,
                                                          tmp_path: Path) -> None:
    expected = _replayed(tiny_model, tmp_path)
    anomaly = [a for a in expected if orjson.loads(a)["rule"] == "anomaly"]
    # the property is about the stage: replay must find the insider's window and risk alerts
    risk = sum(map(_is_risk, anomaly))
    assert risk >= 1
    assert len(anomaly) > risk

    @fuzz("order_anomaly", 20, slow=True)
    @given(case=deliveries())
    def check(case: dict[str, Any]) -> None:
        live, pipeline = _live(tiny_model, case)
        stats = pipeline.order.stats
        note(f"late={stats.late} ahead={stats.ahead} steps={len(case['steps'])}")
        assert stats.late == 0, "an event was made late"
        missing, extra = sorted(expected - live), sorted(live - expected)
        assert (missing, extra) == ([], []), (
            f"missing {len(missing)} {[orjson.loads(a)['rule'] for a in missing][:10]}, "
            f"extra {len(extra)} {[orjson.loads(a)['rule'] for a in extra][:10]}\n"
            f"first missing: {missing[:1]!r}\nfirst extra: {extra[:1]!r}")
        assert all(b.safe() == b.next for b in pipeline.books.values()), "an offset not released"
        event(f"partitions={case['parts']} keyed={case['keyed']}")
        event(f"pauses={case['pauses']}")

    check()
