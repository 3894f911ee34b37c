"""The anomaly model's saved state with Kafka and MQTT in one instance
(watchdog.daemon.model_state_dual), against the real Pipeline (no broker): what the restored
stage sees after a SIGTERM (exactly the uninterrupted run's events, in order) and after a
kill -9 (those less the MQTT events processed and acknowledged since the save).

The stage is test_model_state's recording fake (its state is the ids it saw; after a restore
it skips what its frontier says it holds, as the real stage does)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.daemon.helpers import Rec
from tests.daemon.test_model_state import LATENESS, Log, SeenStage, _count, _pipeline, _raw
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.model_state import decode
from watchdog.daemon.model_state_dual import KAFKA_WAIT, WAIT_SECONDS, DualStateKeeper
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.settings import ModelState, Mqtt
from watchdog.daemon.sources.base import MQTT_STREAM, Raw

MQ = -1  # a record's source in the streams below: MQTT (else the Kafka partition)
Item = tuple[int, float]  # (event index, seconds)


def _keeper(tmp: Path, stage: SeenStage, p: Pipeline, m: Metrics | None = None,
            mqtt: Mqtt | None = None) -> DualStateKeeper:
    return DualStateKeeper(ModelState(every_seconds=60.0), mqtt or Mqtt(subscribe=["logs/#"]),
                           group="g", topic="access-logs", stage=stage, pipeline=p,
                           metrics=m or Metrics(), log=Log(), max_records=10**6,
                           path=tmp / "anomaly.state")


class Run:
    """One process: a pipeline reading Kafka partitions and the MQTT stream as the sources
    hand records on (MQTT numbered from 0 in each process, as MqttSource does)."""

    def __init__(self, stage: SeenStage) -> None:
        self.p = _pipeline(stage)
        self.seq = 0
        self.mqtt: list[int] = []  # event index of each MQTT message, by its number here

    def kafka(self, q: int, off: int, item: Item) -> None:
        self.p.ingest(q, [Rec(off, _raw(*item), q)], "access-logs")
        self.p.partitions[q].pos = off + 1

    def message(self, item: Item) -> None:
        self.p.ingest(MQTT_STREAM, [Raw(_raw(*item), self.seq, MQTT_STREAM)], "logs")
        self.mqtt.append(item[0])
        self.seq += 1

    def acked(self) -> int:
        """Messages acknowledged (in order, below the book's safe number)."""
        return self.p.partitions[MQTT_STREAM].book.safe()  # type: ignore[union-attr]

    def safe(self, parts: range) -> dict[int, int]:
        return {q: self.p.partitions[q].book.safe() for q in parts}  # type: ignore[union-attr]


@st.composite
def _streams(draw: st.DrawFn) -> tuple[dict[int, list[Item]], list[int]]:
    """Records per source (Kafka partitions 0.., MQTT), each disordered within the lateness,
    and the order in which the sources hand them on (a schedule of source keys)."""
    parts = draw(st.integers(1, 2))
    n = draw(st.integers(6, 50))
    times = sorted(draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)))
    streams: dict[int, list[Item]] = {q: [] for q in [*range(parts), MQ]}
    for i, step in enumerate(times):
        streams[draw(st.sampled_from(sorted(streams)))].append((i, 30.0 * step))
    for s in streams.values():  # swap neighbours less than the lateness apart
        for _ in range(draw(st.integers(0, len(s)))):
            if len(s) > 1:
                j = draw(st.integers(0, len(s) - 2))
                if abs(s[j][1] - s[j + 1][1]) < LATENESS:
                    s[j], s[j + 1] = s[j + 1], s[j]
    schedule = draw(st.permutations([q for q, s in streams.items() for _ in s]))
    return streams, schedule


def _whole(tmp: Path, streams: dict[int, list[Item]], schedule: list[int]) -> list[str]:
    stage = SeenStage()
    run = Run(stage)
    for q in streams:
        if q != MQ:
            run.p.open_partition(q, 0)
    run.p.track_stream(MQTT_STREAM)
    pos = dict.fromkeys(streams, 0)
    for q in schedule:
        _step(run, streams, pos, q)
    run.p.flush()
    return stage.seen


def _step(run: Run, streams: dict[int, list[Item]], pos: dict[int, int], q: int) -> None:
    item = streams[q][pos[q]]
    if q == MQ:
        run.message(item)
    else:
        run.kafka(q, pos[q], item)
    pos[q] += 1


@settings(max_examples=150, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_streams(), data=st.data())
def test_after_a_stop_or_a_crash_the_stage_sees_every_event_once_in_order(
        tmp_path: Path, case: tuple[dict[int, list[Item]], list[int]],
        data: st.DataObject) -> None:
    """SIGTERM (``kill`` False): the buffer left (not every partition idle), saved, then
    committed and acknowledged up to the safe offsets: the restored stage sees exactly the
    uninterrupted run's events. kill -9: saved after ``save_at`` records, killed after
    ``crash_at``: the same less the MQTT events released after the save and acknowledged
    before the kill (the commits as at the kill or the save, any acknowledgements up to the
    safe number). Either way MQTT messages come before the first assignment too."""
    streams, schedule = case
    parts = range(len(streams) - 1)
    whole = _whole(tmp_path, streams, schedule)
    kill = data.draw(st.booleans(), "kill")
    save_at = data.draw(st.integers(1, len(schedule)), "save_at")
    crash_at = data.draw(st.integers(save_at, len(schedule)), "crash_at") if kill else save_at
    # the first process
    first = SeenStage()
    run = Run(first)
    for q in parts:
        run.p.open_partition(q, 0)
    run.p.track_stream(MQTT_STREAM)
    pos = dict.fromkeys(streams, 0)
    for q in schedule[:save_at]:
        _step(run, streams, pos, q)
    if not kill:
        assert not run.p.flush_at_stop(rereads=True)  # (the stop of an MQTT that reads again)
    keeper = _keeper(tmp_path, first, run.p)
    saved = asyncio.run(keeper.save())
    held = set(first.seen)
    at_save = run.safe(parts)
    for q in schedule[save_at:crash_at]:
        _step(run, streams, pos, q)
    committed, acked = run.safe(parts), run.acked()
    if kill:  # the commits a commit interval behind, the acknowledgements a tick behind
        if data.draw(st.booleans(), "commits as at the save"):
            committed = at_save
        acked = data.draw(st.integers(0, acked), "acknowledged")
    lost = {i for i in run.mqtt[:acked] if f"e{i}" not in held} if kill else set()
    # what the broker has for the restart: MQTT messages not acknowledged (in order), then
    # those never delivered; Kafka from the committed offsets (or the state's resume)
    again = SeenStage()
    run2 = Run(again)
    k = _keeper(tmp_path, again, run2.p)
    k.load()
    run2.p.track_stream(MQTT_STREAM)
    mqtt_left = [streams[MQ][j] for j in range(len(streams[MQ]))
                 if j >= pos[MQ] or j >= acked]  # (acked: a prefix of the stream's order)
    early = data.draw(st.integers(0, len(mqtt_left)), "mqtt before the assignment")
    for item in mqtt_left[:early]:
        run2.message(item)
    back = k.on_assigned(committed)
    start = {q: min(committed[q], back.get(q, committed[q])) for q in parts}
    for q in parts:
        run2.p.open_partition(q, committed[q], start=start[q], resume=committed[q])
    k.assigned()
    rest = iter(mqtt_left[early:])
    kpos = dict(start)
    # the sources interleaved, each in its own order
    for q in data.draw(st.permutations([MQ] * (len(mqtt_left) - early) + [
            p for p in parts for _ in range(start[p], len(streams[p]))]), "rest"):
        if q == MQ:
            run2.message(next(rest))
        else:
            run2.kafka(q, kpos[q], streams[q][kpos[q]])
            kpos[q] += 1
    run2.p.flush()
    assert saved == bool(held)
    if saved:
        # in time order, each event once (events of one time in the order they came: arrival
        # decides among those at the watermark, in any run)
        at = {f"e{i}": t for s in streams.values() for i, t in s}
        want = [e for e in whole if int(e[1:]) not in lost]
        assert sorted(again.seen) == sorted(want)
        assert [at[e] for e in again.seen] == sorted(at[e] for e in want)
    k.path.unlink(missing_ok=True)


def test_a_stop_that_processes_the_buffer_would_lose_a_partitions_events_behind_it(
        tmp_path: Path) -> None:
    """Why the MQTT source reads again beside Kafka: a stop that processes the buffer (as with
    MQTT alone) moves the frontier past partition 1's record not fetched yet (e5); after the
    restart the stage drops it as held. Left, the buffer is read again and e5 is seen."""
    kafka = {0: [(0, 0.0), (3, 400.0)], 1: [(1, 10.0), (6, 150.0), (5, 300.0)]}
    mqtt = [(2, 20.0), (4, 500.0)]
    every = ["e0", "e1", "e2", "e6", "e5", "e3", "e4"]  # in time order
    for flush in (True, False):
        stage = SeenStage()
        run = Run(stage)
        for q in kafka:
            run.p.open_partition(q, 0)
        run.p.track_stream(MQTT_STREAM)
        run.kafka(0, 0, kafka[0][0])
        run.kafka(1, 0, kafka[1][0])
        run.message(mqtt[0])
        run.kafka(1, 1, kafka[1][1])
        run.kafka(0, 1, kafka[0][1])
        run.message(mqtt[1])  # (partition 1's e5 produced, not fetched yet)
        assert stage.seen == ["e0", "e1", "e2"]
        assert run.p.flush_at_stop(rereads=not flush) == flush
        k = _keeper(tmp_path, stage, run.p)
        assert asyncio.run(k.save())
        committed, acked = run.safe(range(2)), run.acked()
        again = SeenStage()
        run2 = Run(again)
        k2 = _keeper(tmp_path, again, run2.p)
        k2.load()
        run2.p.track_stream(MQTT_STREAM)
        for item in mqtt[acked:]:
            run2.message(item)
        back = k2.on_assigned(committed)
        for q, recs in kafka.items():
            start = min(committed[q], back.get(q, committed[q]))
            run2.p.open_partition(q, committed[q], start=start, resume=committed[q])
            for off in range(start, len(recs)):
                run2.kafka(q, off, recs[off])
        k2.assigned()
        run2.p.flush()
        # (the restored stage's state is what the first one saw)
        if flush:
            assert again.seen == [e for e in every if e != "e5"]  # dropped: behind the frontier
        else:
            assert again.seen == every
        k.path.unlink()


def test_mqtt_waits_for_the_first_assignment(tmp_path: Path) -> None:
    """Messages that come before the group assigns are not released before the Kafka
    partitions' re-read (their events would be late and the restore refused)."""
    m = Metrics()
    stage = SeenStage()
    run = Run(stage)
    run.p.open_partition(0, 0)
    run.p.track_stream(MQTT_STREAM)
    run.kafka(0, 0, (0, 0.0))
    run.message((1, 100.0))
    run.kafka(0, 1, (2, 200.0))  # releases e0
    k = _keeper(tmp_path, stage, run.p)
    assert asyncio.run(k.save())
    assert decode(k.path.read_bytes()).header.stream == "mqtt watchdog logs/#"
    again = SeenStage()
    run2 = Run(again)
    k2 = _keeper(tmp_path, again, run2.p, m)
    k2.load()
    assert KAFKA_WAIT in run2.p.partitions
    run2.p.track_stream(MQTT_STREAM)
    run2.message((1, 100.0))  # not acknowledged: delivered again
    run2.message((3, 900.0))
    run2.p.mark_idle(MQTT_STREAM)  # (a quiet stream releases nothing either)
    assert again.seen == []
    back = k2.on_assigned({0: 1})
    run2.p.open_partition(0, 1, start=back[0], resume=1)
    k2.assigned()
    assert KAFKA_WAIT not in run2.p.partitions
    run2.kafka(0, 1, (2, 200.0))
    run2.p.flush()
    assert again.seen == ["e0", "e1", "e2", "e3"]
    assert _count(m, "watchdog_model_state_restores_total", "restored") == 1


def _saved_mqtt_only(tmp_path: Path) -> None:
    """A state saved with two MQTT messages read (e0 released, e1 waiting) and no partition."""
    stage = SeenStage()
    run = Run(stage)
    run.p.track_stream(MQTT_STREAM)
    run.message((0, 0.0))
    run.message((1, 100.0))
    assert asyncio.run(_keeper(tmp_path, stage, run.p).save())


def test_without_partitions_it_restores_at_the_first_assignment(tmp_path: Path) -> None:
    _saved_mqtt_only(tmp_path)
    again = SeenStage()
    run2 = Run(again)
    k2 = _keeper(tmp_path, again, run2.p)
    k2.load()
    k2.assigned()  # the group gave this instance no partition
    assert again.seen == ["e0"]  # restored (e1 still waits for the watermark)
    assert KAFKA_WAIT not in run2.p.partitions


def test_a_group_that_never_assigns_ends_the_wait(tmp_path: Path) -> None:
    _saved_mqtt_only(tmp_path)
    k2 = _keeper(tmp_path, SeenStage(), Run(SeenStage()).p)
    k2.load()
    assert k2.waiting_since is not None
    k2.tick(k2.waiting_since + WAIT_SECONDS - 1)
    assert KAFKA_WAIT in k2.pipeline.partitions
    k2.tick(k2.waiting_since + WAIT_SECONDS)
    assert KAFKA_WAIT not in k2.pipeline.partitions
    assert [e for e, _ in k2.log.lines] == ["model_state_wait_ended"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("mqtt", "why"), [
    (Mqtt(subscribe=["other/#"]), "another MQTT stream"), (None, "without this MQTT stream")])
def test_a_state_of_another_stream_is_stale(tmp_path: Path, mqtt: Mqtt | None,
                                            why: str) -> None:
    from watchdog.daemon.model_state import Header, encode

    m = Metrics()
    stage = SeenStage()
    k = _keeper(tmp_path, stage, _pipeline(stage), m)
    head = Header("access-logs", "g", 1.0, {0: 1},
                  stream="" if mqtt is None else "mqtt watchdog other/#")
    k.path.write_bytes(b"".join(encode(head, b"HEAD")))
    k.load()
    assert KAFKA_WAIT not in k.pipeline.partitions
    assert _count(m, "watchdog_model_state_restores_total", "stale") == 1
    assert any(why in kw.get("reason", "") for _, kw in k.log.lines)  # type: ignore[attr-defined]
