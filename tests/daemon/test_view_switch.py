"""The main pipeline's view becomes whole again (a scale-in): no false whole-stream alert (pure:
two members' pipelines fed as their Kafka loops feed them, no broker).

Two members split the partitions (partial views: ``log_gap`` held back); the one that stays
then gets the other's partitions, re-read from before their committed offsets. What the other
had read past its last commit (the reorder buffer it held, and what it read since) comes behind
what the one that stays released with its partial view: late, processed at once, a partition's
batch after another's, by rules that had seen only its own partitions. A dataset's next
sequence number, in a partition read later, was taken for a gap: a false ``log_gap`` sent with
the whole view (2 of 3 runs of test_whole_stream's scaling test when sticky placed partition
0 and 1 on the member that stays; round robin placed the datasets' numbers otherwise).
"""

from __future__ import annotations

import zlib
from datetime import datetime

import orjson
import pytest

from tests.daemon.helpers import CollectAlerts, QuietLog, World, fetched
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import WHOLE_STREAM_RULES, Pipeline
from watchdog.daemon.sources.base import Raw

PARTITIONS = 4
BATCH = 50


def _t(raw: bytes) -> float:
    stamp = orjson.loads(raw)["@timestamp"].replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def _pipeline(world: World) -> tuple[Pipeline, CollectAlerts]:
    out = CollectAlerts()
    return Pipeline(world.engine(), out, None, Metrics(), QuietLog()), out  # type: ignore[arg-type]


def _read(pipeline: Pipeline, records: dict[int, list[Raw]], frm: dict[int, int],
          upto: dict[int, int]) -> None:
    """Each partition's records [frm, upto) in batches, the partitions in turn."""
    pos = dict(frm)
    while any(pos[p] < upto[p] for p in pos):
        for p in pos:
            if pos[p] < upto[p]:
                end = min(upto[p], pos[p] + BATCH)
                fetched(pipeline, p, records[p][pos[p]:end], len(records[p]))
                pos[p] = end


def _scale_in(world: World, stays_on: tuple[int, ...], split: float,
              committed_at: float) -> tuple[set[str], set[str]]:
    """The stream up to ``split`` (a share of it, in time order) read by two members, one
    owning ``stays_on``, the other the rest, its last commit made at ``committed_at``; then the
    rest of the stream read by the first, with the whole view. Its whole-stream alerts, and
    replay's."""
    leaving = tuple(p for p in range(PARTITIONS) if p not in stays_on)
    events = sorted(world.events, key=_t)
    parts: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    at_split: dict[int, int] = dict.fromkeys(range(PARTITIONS), 0)
    at_commit: dict[int, int] = dict.fromkeys(range(PARTITIONS), 0)
    for i, raw in enumerate(events):
        p = zlib.crc32(World.user_of(raw).encode()) % PARTITIONS  # keyed by account
        parts[p].append(raw)
        if i < len(events) * split:
            at_split[p] = len(parts[p])
        if i < len(events) * committed_at:
            at_commit[p] = len(parts[p])
    records = {p: [Raw(v, o, p) for o, v in enumerate(vs)] for p, vs in parts.items()}
    stays, out = _pipeline(world)
    leaves, _ = _pipeline(world)
    for pipe, mine in ((stays, stays_on), (leaves, leaving)):
        for p in mine:
            pipe.open_partition(p, 0)
        pipe.partial_view = True
    _read(leaves, records, dict.fromkeys(leaving, 0), {p: at_commit[p] for p in leaving})
    commits = {p: leaves.partitions[p].book.safe() for p in leaving}  # type: ignore[union-attr]
    _read(stays, records, dict.fromkeys(stays_on, 0), {p: at_split[p] for p in stays_on})
    # scale-in, as KafkaSource._assign does it: the new partitions opened (re-read from the
    # start: windows only below their committed offsets), then the view is whole
    for p in leaving:
        stays.open_partition(p, commits[p], start=0, resume=commits[p])
    stays.partial_view = False
    _read(stays, records, dict.fromkeys(leaving, 0), {p: at_split[p] for p in leaving})
    _read(stays, records, at_split, {p: len(records[p]) for p in range(PARTITIONS)})
    for p in range(PARTITIONS):
        stays.mark_idle(p)
    stays.flush()
    sent = {a.alert_id for a in out.alerts if a.rule in WHOLE_STREAM_RULES}
    return sent, {a for a in world.expected if a.split(":")[0] in WHOLE_STREAM_RULES}


@pytest.mark.parametrize("stays_on", [(0, 1), (0, 2)], ids=["sticky", "round_robin"])
def test_what_the_leaving_member_left_uncommitted_raises_no_false_log_gap(
        world: World, stays_on: tuple[int, ...]) -> None:
    """Where sticky and round robin place the partitions of the member that stays (which of
    them comes first does not matter), and whatever the leaving one committed last."""
    for split, committed_at in ((0.5, 0.45), (0.5, 0.49), (0.7, 0.6), (0.3, 0.29)):
        sent, replays = _scale_in(world, stays_on, split, committed_at)
        assert not sent - replays, f"false alerts at {split}: {sorted(sent - replays)}"
        assert sent, "the whole view sends the whole-stream alerts of what follows"
