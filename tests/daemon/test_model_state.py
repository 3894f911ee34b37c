"""The anomaly model's saved state (watchdog.daemon.model_state): the file, the keeper's
decisions, and the offsets it resumes from, against the real Pipeline (no broker).

The stage here is a recording fake (a unit test of the offsets' logic: what the stage has seen
is the whole of its state); the real stage's snapshot is tested in tests/anomaly, and the
daemon with the real stage, broker and a kill -9 in tests/fuzz."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import BASE, engine, event_doc
from tests.daemon.helpers import CollectAlerts, Rec, RecordingLog
from watchdog.alerts.model import Alert
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.model_state import (
    MAGIC,
    Header,
    ModelStateError,
    ModelStateKeeper,
    decode,
    default_path,
    encode,
)
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.settings import ModelState
from watchdog.events import AccessEvent

LATENESS = 60.0


Log = RecordingLog  # (the name the model-state tests import)


class SeenStage:
    """Sees events as the anomaly stage does (in release order, after its frontier once
    restored); its state is the ids it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._t = float("-inf")
        self._ids: set[str] = set()
        self._skip: tuple[float, frozenset[str]] = (float("-inf"), frozenset())

    @property
    def frontier(self) -> float:
        return self._t

    def observe(self, ev: AccessEvent, t: float) -> list[Alert]:
        return self.observe_many([(ev, t)])

    def observe_many(self, items: Sequence[tuple[AccessEvent, float]]) -> list[Alert]:
        skip_t, skip_ids = self._skip
        for ev, t in items:
            eid = ev.event.id
            if t < skip_t or (t == skip_t and eid in skip_ids):
                continue
            self.seen.append(eid)
            if t > self._t:
                self._t, self._ids = t, {eid}
            elif t == self._t:
                self._ids.add(eid)
        return []

    def flush(self) -> list[Alert]:
        return []

    def drain(self) -> list[Alert]:
        return []

    def snapshot_payload(self) -> bytes:
        return msgspec.msgpack.encode([self.seen, self._t, sorted(self._ids)])

    @staticmethod
    def payload_head(payload: bytes) -> bytes:
        return b"HEAD"

    def restore(self, blob: bytes | memoryview) -> None:
        if bytes(blob[:4]) != b"HEAD":
            raise ValueError("not a stage state")
        try:
            seen, t, ids = msgspec.msgpack.decode(blob[4:])
        except msgspec.DecodeError:
            raise ValueError("not a stage state") from None
        self.seen, self._t, self._ids = list(seen), t, set(ids)
        self._skip = (t, frozenset(ids))

    def tracked(self) -> int:
        return len(self.seen)


def _raw(i: int, seconds: float) -> bytes:
    return orjson.dumps(event_doc(id=f"e{i}", when=BASE + timedelta(seconds=seconds)))


def _pipeline(stage: SeenStage) -> Pipeline:
    return Pipeline(engine(), CollectAlerts(), None, Metrics(), Log(),  # type: ignore[arg-type]
                    stages=[stage], lateness=LATENESS)


def _keeper(tmp: Path, stage: SeenStage, pipeline: Pipeline, *, max_records: int = 10**6,
            metrics: Metrics | None = None) -> ModelStateKeeper:
    return ModelStateKeeper(ModelState(every_seconds=60.0), group="g", topic="access-logs",
                            stage=stage, pipeline=pipeline, metrics=metrics or Metrics(),
                            log=Log(), max_records=max_records, path=tmp / "anomaly.state")


def _save(k: ModelStateKeeper, header: Header, *stage: bytes) -> None:
    """A state file as the keeper writes it."""
    k.path.write_bytes(b"".join(encode(header, *stage)))


def _count(m: Metrics, name: str, result: str) -> float:
    v = m.registry.get_sample_value(name, {"result": result})
    return 0.0 if v is None else v


# -- the file ---------------------------------------------------------------------------------
def test_the_file_round_trips_and_refuses_what_it_cannot_use() -> None:
    header = Header("access-logs", "g", 1.0, {0: 5, 3: 7})
    data = b"".join(encode(header, b"\x00st", b"age"))
    assert data.startswith(MAGIC)
    back = decode(data)
    assert back.header == header
    assert bytes(back.stage) == b"\x00stage"  # checked by the stage's own restore
    for bad, why in [(data[:20], "truncated"), (b"XXXXXX" + data[6:], "not a watchdog"),
                     (data[:6] + b"\x00\x09" + data[8:], "format version 9"),
                     (data[:50] + bytes([data[50] ^ 1]) + data[51:], "checksum"),
                     (data[:60], "header past the end")]:
        with pytest.raises(ModelStateError, match=why) as err:
            decode(bad)
        assert "\n" not in str(err.value)


def test_the_default_path_is_under_the_state_directory() -> None:
    s = ModelState()
    assert default_path(s, "watch dog", {"STATE_DIRECTORY": "/var/lib/w:/x"}) == Path(
        "/var/lib/w/anomaly-watch_dog.state")
    assert default_path(ModelState(path="m.state"), "g", {}) == Path("m.state")


# -- the keeper -------------------------------------------------------------------------------
def test_no_file_starts_afresh_and_an_unusable_one_is_moved_aside(
        tmp_path: Path) -> None:
    m = Metrics()
    stage = SeenStage()
    k = _keeper(tmp_path, stage, _pipeline(stage), metrics=m)
    k.load()
    assert _count(m, "watchdog_model_state_restores_total", "none") == 1
    assert k.on_assigned({0: 10}) == {}
    k.path.write_bytes(b"WDMSTA\x00\x01garbage")
    k.load()
    assert _count(m, "watchdog_model_state_restores_total", "unreadable") == 1
    assert not k.path.exists()
    assert k.path.with_name("anomaly.state.unreadable").exists()


def _refused(tmp: Path, stage: SeenStage, blob: bytes) -> ModelStateKeeper:
    """A saved state whose restore the stage refuses (or raises on): nothing restored,
    counted unreadable."""
    m = Metrics()
    k = _keeper(tmp, stage, _pipeline(stage), metrics=m)
    _save(k, Header("access-logs", "g", 1.0, {0: 1}), blob)
    k.load()
    assert k.on_assigned({0: 3}) == {}
    assert _count(m, "watchdog_model_state_restores_total", "unreadable") == 1
    return k


def test_a_state_the_stage_refuses_is_unreadable(tmp_path: Path) -> None:
    stage = SeenStage()
    _refused(tmp_path, stage, b"HEAD\xc1")
    assert stage.seen == []


@pytest.mark.parametrize(("saved", "committed", "why"), [
    (Header("other-topic", "g", 1.0, {0: 0}), {0: 5}, "another topic"),
    (Header("access-logs", "g", 1.0, {0: 0}), {0: 101}, "max_reread_records 100"),
    (Header("access-logs", "other", 1.0, {0: 0}), {0: 5}, "consumer group other"),
    (Header("access-logs", "g", 1.0, {0: 7, 1: 3}), {0: 9, 1: -1}, "partition 1 has no committed"),
])
def test_a_stale_state_starts_afresh(tmp_path: Path, saved: Header,
                                     committed: dict[int, int], why: str) -> None:
    m = Metrics()
    stage = SeenStage()
    k = _keeper(tmp_path, stage, _pipeline(stage), max_records=100, metrics=m)
    _save(k, saved, b"HEAD")
    k.load()
    assert k.on_assigned(committed) == {}
    assert _count(m, "watchdog_model_state_restores_total", "stale") == 1
    assert any(why in kw.get("reason", "") for _, kw in k.log.lines)  # type: ignore[attr-defined]


def test_it_restores_once_at_the_first_assignment_with_partitions(
        tmp_path: Path) -> None:
    m = Metrics()
    stage = SeenStage()
    k = _keeper(tmp_path, stage, _pipeline(stage), metrics=m)
    _save(k, Header("access-logs", "g", 1.0, {0: 4, 1: 9}), b"HEAD",
          msgspec.msgpack.encode([["a"], 5.0, ["a"]]))
    k.load()
    assert k.on_assigned({}) == {}  # nothing assigned yet: kept for the next assignment
    assert k.on_assigned({0: 6, 2: 3}) == {0: 4}  # partition 1 is another instance's now
    assert stage.seen == ["a"]
    assert stage.frontier == 5.0
    assert k.on_assigned({1: 9}) == {}  # once
    assert _count(m, "watchdog_model_state_restores_total", "restored") == 1


def test_a_save_is_deferred_while_re_read_records_wait_and_written_0600_after(
        tmp_path: Path) -> None:
    m = Metrics()
    stage = SeenStage()
    p = _pipeline(stage)
    k = _keeper(tmp_path, stage, p, metrics=m)
    p.open_partition(0, 2, start=0, resume=2)  # records 0 and 1 are re-read
    p.ingest(0, [Rec(0, _raw(0, 0)), Rec(1, _raw(1, 10))], "access-logs")
    p.partitions[0].pos = 2
    gauge = m.registry.get_sample_value
    started = gauge("watchdog_model_state_last_save_timestamp_seconds")
    assert started
    assert gauge("watchdog_model_state_period_seconds") == 60.0
    assert not asyncio.run(k.save())  # their events are still in the reorder buffer
    assert _count(m, "watchdog_model_state_saves_total", "deferred") == 1
    # (the alert WatchdogModelStateSavesDeferred: deferred, and the last save's age)
    assert gauge("watchdog_model_state_deferred") == 1
    assert gauge("watchdog_model_state_last_save_timestamp_seconds") == started
    p.ingest(0, [Rec(2, _raw(2, 200))], "access-logs")  # releases both
    p.partitions[0].pos = 3
    assert asyncio.run(k.save())
    assert gauge("watchdog_model_state_deferred") == 0
    assert gauge("watchdog_model_state_last_save_timestamp_seconds") == \
        decode(k.path.read_bytes()).header.written_at
    assert stat.S_IMODE(os.stat(k.path).st_mode) == 0o600
    assert decode(k.path.read_bytes()).header.resume == {0: 2}


# -- the offsets: a restart sees every event once, in order ------------------------------------
@st.composite
def _streams(draw: st.DrawFn) -> tuple[list[list[tuple[int, float]]], int, int]:
    """Records (index, time) per partition, disordered within the lateness; where to save and
    where to crash (batches fed)."""
    parts = draw(st.integers(1, 3))
    n = draw(st.integers(5, 60))
    times = sorted(draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)))
    streams: list[list[tuple[int, float]]] = [[] for _ in range(parts)]
    for i, step in enumerate(times):
        streams[draw(st.integers(0, parts - 1))].append((i, 30.0 * step))
    for s in streams:  # swap neighbours less than the lateness apart
        for _ in range(draw(st.integers(0, len(s)))):
            if len(s) > 1:
                j = draw(st.integers(0, len(s) - 2))
                if abs(s[j][1] - s[j + 1][1]) < LATENESS:
                    s[j], s[j + 1] = s[j + 1], s[j]
    batches = sum(len(s) for s in streams)
    save_at = draw(st.integers(1, batches))
    crash_at = draw(st.integers(save_at, batches))
    return streams, save_at, crash_at


def _feed(p: Pipeline, streams: list[list[tuple[int, float]]], offsets: dict[int, int],
          upto: int) -> int:
    """Round-robin one record per partition per step, from ``offsets``; ``upto`` records."""
    fed = 0
    while fed < upto:
        moved = False
        for q, s in enumerate(streams):
            off = offsets[q]
            if off < len(s) and fed < upto:
                i, t = s[off]
                p.ingest(q, [Rec(off, _raw(i, t), q)], "access-logs")
                p.partitions[q].pos = offsets[q] = off + 1
                fed += 1
                moved = True
        if not moved:
            break
    return fed


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_streams(), commit_lag=st.booleans())
def test_after_a_crash_the_restored_stage_sees_every_event_once_in_order(
        tmp_path: Path, case: tuple[list[list[tuple[int, float]]], int, int],
        commit_lag: bool) -> None:
    streams, save_at, crash_at = case
    parts = range(len(streams))
    # uninterrupted
    whole = SeenStage()
    p = _pipeline(whole)
    for q in parts:
        p.open_partition(q, 0)
    _feed(p, streams, dict.fromkeys(parts, 0), 10**6)
    p.flush()
    # saved after save_at records, crashed after crash_at (what was committed by then: the
    # safe offsets at the crash, or, a commit behind, those at the save)
    first = SeenStage()
    p = _pipeline(first)
    for q in parts:
        p.open_partition(q, 0)
    offsets = dict.fromkeys(parts, 0)
    _feed(p, streams, offsets, save_at)
    keeper = _keeper(tmp_path, first, p)
    saved = asyncio.run(keeper.save())
    learnt = first.frontier > float("-inf")
    at_save = {q: p.partitions[q].book.safe() for q in parts}  # type: ignore[union-attr]
    _feed(p, streams, offsets, crash_at - save_at)
    committed = at_save if commit_lag else {
        q: p.partitions[q].book.safe() for q in parts}  # type: ignore[union-attr]
    # the restart
    again = SeenStage()
    p = _pipeline(again)
    k = _keeper(tmp_path, again, p)
    k.load()
    back = k.on_assigned(committed)
    assert bool(back) == saved
    start = {q: min(committed[q], back.get(q, committed[q])) for q in parts}
    for q in parts:
        p.open_partition(q, committed[q], start=start[q], resume=committed[q])
    _feed(p, streams, dict(start), 10**6)
    p.flush()
    assert saved == learnt  # nothing released to the stage by then: nothing saved
    if saved:
        assert again.seen == whole.seen
    k.path.unlink(missing_ok=True)


class _Ends(SeenStage):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def flush(self) -> list[Alert]:
        self.calls.append("flush")
        return []

    def drain(self) -> list[Alert]:
        self.calls.append("drain")
        return []


@pytest.mark.parametrize(("goes_on", "call"), [(False, "flush"), (True, "drain")])
def test_a_shutdown_drains_the_stages_whose_state_is_kept(goes_on: bool, call: str) -> None:
    stage = _Ends()
    p = _pipeline(stage)
    p.stages_go_on = goes_on
    p.open_partition(0, 0)
    p.ingest(0, [Rec(0, _raw(0, 0))], "access-logs")
    p.flush()
    assert stage.calls == [call]
    assert stage.seen == ["e0"]


def test_an_empty_partition_without_a_committed_offset_does_not_make_it_stale(
        tmp_path: Path) -> None:
    stage = SeenStage()
    k = _keeper(tmp_path, stage, _pipeline(stage))
    _save(k, Header("access-logs", "g", 1.0, {0: 4, 1: 0}), b"HEAD",
          msgspec.msgpack.encode([["a"], 5.0, ["a"]]))
    k.load()
    assert k.on_assigned({0: 6, 1: -1}) == {0: 4}
    assert stage.seen == ["a"]


class _Broken(SeenStage):
    def restore(self, blob: bytes | memoryview) -> None:
        raise KeyError("c-0001234")  # a bug, whose message quotes an id


def test_a_restore_that_raises_starts_afresh_without_quoting_it(tmp_path: Path) -> None:
    k = _refused(tmp_path, _Broken(), b"HEAD")
    assert "c-0001234" not in repr(k.log.lines)  # type: ignore[attr-defined]
    events = [e for e, _ in k.log.lines]  # type: ignore[attr-defined]
    assert events == ["model_state_unreadable"]


def test_a_save_waits_while_an_alert_waits_for_a_sink(tmp_path: Path) -> None:
    """A state holding the events of an alert still in flight would, after a crash, drop them
    when read again and never raise the alert again: the save is deferred until every alert
    was accepted (the service's ``settled``), and the periodic loop tries again soon."""
    m = Metrics()
    stage = SeenStage()
    p = _pipeline(stage)
    k = _keeper(tmp_path, stage, p, metrics=m)
    p.open_partition(0, 0)
    p.ingest(0, [Rec(0, _raw(0, 0)), Rec(1, _raw(1, 200))], "access-logs")
    p.partitions[0].pos = 2
    in_flight = [1]
    k.settled = lambda: not in_flight
    assert not asyncio.run(k.save())
    assert k.deferred
    assert _count(m, "watchdog_model_state_saves_total", "deferred") == 1
    assert not k.path.exists()
    in_flight.clear()
    assert asyncio.run(k.save())
    assert not k.deferred
    assert decode(k.path.read_bytes()).header.resume == {0: 1}
