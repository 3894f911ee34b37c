"""The anomaly model's saved state with an MQTT source (watchdog.daemon.model_state_mqtt), with
the real Pipeline, the real checkpoint of the rules' state and the keeper (no broker): what the
stage has seen after a crash and a restart, wherever the model's save and the checkpoint fell.

The stage is the recording fake of tests/daemon/test_model_state.py (its state is the ids it
saw); the daemon with the real stage and mosquitto: tests/fuzz/test_live_mqtt_anomaly_state.py.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.builders import BASE, engine, event_doc
from tests.daemon.test_model_state import Log, SeenStage, _count, _pipeline
from watchdog.daemon.app import Service
from watchdog.daemon.checkpoint import Checkpoints
from watchdog.daemon.config import load_config
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.model_state import Header, ModelStateKeeper, decode, encode
from watchdog.daemon.model_state_dual import DualStateKeeper
from watchdog.daemon.model_state_mqtt import StreamStateKeeper, missed, stream_name
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.settings import ModelState, Mqtt, MqttCheckpoint
from watchdog.daemon.sources.base import MQTT_STREAM, Raw

MQ = Mqtt(client_id="wd-1", subscribe=["logs/+/access"], checkpoint=MqttCheckpoint())
RESTORES = "watchdog_model_state_restores_total"


def _keeper(tmp: Path, stage: SeenStage, pipeline: Pipeline, m: Metrics,
            mq: Mqtt = MQ) -> StreamStateKeeper:
    return StreamStateKeeper(ModelState(every_seconds=60.0), mq, stage=stage, pipeline=pipeline,
                             metrics=m, log=Log(), path=tmp / "anomaly.state")


def _checkpoints(tmp: Path, p: Pipeline, m: Metrics) -> Checkpoints:
    return Checkpoints(MQ, p.detector, m, Log(), settled=lambda: True,
                       path=tmp / "mqtt.checkpoint")


class Stream:
    """One MQTT connection's messages into a pipeline, numbered as MqttSource numbers them."""

    def __init__(self, p: Pipeline) -> None:
        self.p, self.seq = p, 0
        self.book = p.track_stream(MQTT_STREAM)
        self.book.log = []  # (the checkpoints' ids of released events, as MqttSource sets it)

    def send(self, raws: list[bytes]) -> None:
        recs = [Raw(r, self.seq + k, MQTT_STREAM) for k, r in enumerate(raws)]
        self.seq += len(raws)
        self.p.ingest(MQTT_STREAM, recs, "logs/a/access")


def _raws(gaps: list[int]) -> list[bytes]:
    t, out = 0, []
    for i, g in enumerate(gaps):
        t += g
        out.append(orjson.dumps(event_doc(id=f"e{i}", when=BASE + timedelta(seconds=t))))
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gaps=st.lists(st.integers(1, 200), min_size=1, max_size=30),
       save_at=st.integers(0, 30), ck_at=st.integers(0, 30), ck_first=st.booleans(),
       idle=st.booleans(), batch=st.integers(1, 7))
def test_after_a_crash_the_model_misses_only_what_it_learnt_after_its_save(
        gaps: list[int], save_at: int, ck_at: int, ck_first: bool, idle: bool,
        batch: int) -> None:
    """Messages go in (in batches, events 1-200 s apart, lateness 60 s: some wait in the
    reorder buffer); the model's state is saved after ``save_at`` of them (after an idle pause
    or not), the rules' state checkpointed after ``ck_at`` (what it holds is acknowledged:
    never delivered again); a crash. The restart restores both before reading, and the broker
    delivers again what was not acknowledged. The restored stage has seen what it saw at its
    save, then every event past both, none twice: it missed exactly the events released between
    its save and a later checkpoint, and the gauge says how many."""
    raws = _raws(gaps)
    n = len(raws)
    ids = [f"e{i}" for i in range(n)]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        m1, s1 = Metrics(), SeenStage()
        p1 = _pipeline(s1)
        k1, ck1 = _keeper(tmp, s1, p1, m1), _checkpoints(tmp, p1, m1)
        src = Stream(p1)
        acked, at_save = 0, list[str]()

        def send_upto(k: int) -> None:
            while src.seq < k:
                src.send(raws[src.seq:min(k, src.seq + batch)])

        for at, _, what in sorted([(save_at % (n + 1), not ck_first, "save"),
                                   (ck_at % (n + 1), ck_first, "checkpoint")]):
            send_upto(at)
            if what == "save":
                if idle:
                    p1.mark_idle(MQTT_STREAM)
                if asyncio.run(k1.save()):
                    at_save = list(s1.seen)
            else:
                acked = ck1.take(src.book, 0) or 0
        send_upto(n)
        # kill -9; the restart: both restored before anything is read, then the redelivery
        m2, s2 = Metrics(), SeenStage()
        p2 = _pipeline(s2)
        ck2 = _checkpoints(tmp, p2, m2)
        assert ck2.load()
        k2 = _keeper(tmp, s2, p2, m2)
        k2.checkpoints = ck2
        k2.load()
        assert _count(m2, RESTORES, "restored") == (1 if at_save else 0)
        Stream(p2).send(raws[acked:])
        p2.mark_idle(MQTT_STREAM)
        assert s2.seen == at_save + ids[max(len(at_save), acked):]
        event(f"the model missed events: {bool(at_save) and acked > len(at_save)}")
        if at_save:
            assert m2.registry.get_sample_value("watchdog_model_state_missed_events") == max(
                0, acked - len(at_save))


# -- the file's stream, and what is refused -----------------------------------------------------
def test_the_file_names_its_stream_and_a_kafka_state_is_written_as_before(
        tmp_path: Path) -> None:
    m, stage = Metrics(), SeenStage()
    p = _pipeline(stage)
    Stream(p).send(_raws([1, 2, 3]))
    p.mark_idle(MQTT_STREAM)
    k = _keeper(tmp_path, stage, p, m)
    assert asyncio.run(k.save())
    head = decode(k.path.read_bytes()).header
    assert (head.topic, head.group, head.resume) == ("mqtt wd-1 logs/+/access", "", {})
    assert head.processed == p.detector.processed == 3
    # a Kafka state's header holds no count (an older daemon reads the file it writes)
    assert b"processed" not in b"".join(
        encode(
            Header("access-logs", "g", 1.0, {0: 1})))


def test_the_default_path_is_the_client_ids() -> None:
    k = StreamStateKeeper(ModelState(), Mqtt(client_id="wd/1", subscribe=["a"]),
                          stage=SeenStage(), pipeline=_pipeline(SeenStage()), metrics=Metrics(),
                          log=Log())
    assert k.path == Path("anomaly-mqtt-wd_1.state")  # (no STATE_DIRECTORY in the tests)


@pytest.mark.parametrize("other", [
    Mqtt(client_id="wd-2", subscribe=["logs/+/access"]),  # another client
    Mqtt(client_id="wd-1", subscribe=["logs/#"]),  # other topic filters
])
def test_a_state_of_another_stream_is_stale(tmp_path: Path, other: Mqtt) -> None:
    m1, s1 = Metrics(), SeenStage()
    p1 = _pipeline(s1)
    Stream(p1).send(_raws([1, 2]))
    p1.mark_idle(MQTT_STREAM)
    assert asyncio.run(_keeper(tmp_path, s1, p1, m1).save())
    m2, s2 = Metrics(), SeenStage()
    k = _keeper(tmp_path, s2, _pipeline(s2), m2, other)
    k.load()
    assert _count(m2, RESTORES, "stale") == 1
    assert s2.frontier == float("-inf")
    assert k.path.exists()  # (kept: the stream it belongs to may come back)


def test_kafka_and_mqtt_states_are_stale_for_each_other(tmp_path: Path) -> None:
    m, s = Metrics(), SeenStage()
    p = _pipeline(s)
    Stream(p).send(_raws([1]))
    p.mark_idle(MQTT_STREAM)
    assert asyncio.run(_keeper(tmp_path, s, p, m).save())
    kafka = ModelStateKeeper(ModelState(), group="g", topic="access-logs", stage=SeenStage(),
                             pipeline=p, metrics=m, log=Log(), max_records=10,
                             path=tmp_path / "anomaly.state")
    kafka.load()
    assert kafka.on_assigned({0: 1}) == {}
    assert _count(m, RESTORES, "stale") == 1
    (tmp_path / "anomaly.state").write_bytes(b"".join(
        encode(
            Header("access-logs", "g", 1.0, {0: 1}), b"HEAD")))
    s2 = SeenStage()
    _keeper(tmp_path, s2, _pipeline(s2), m).load()
    assert _count(m, RESTORES, "stale") == 2
    assert s2.frontier == float("-inf")


def test_an_unusable_state_is_moved_aside_and_the_model_starts_afresh(tmp_path: Path) -> None:
    m, s = Metrics(), SeenStage()
    k = _keeper(tmp_path, s, _pipeline(s), m)
    k.load()
    assert _count(m, RESTORES, "none") == 1
    k.path.write_bytes(b"WDMSTA\x00\x01" + b"\x00" * 60)
    k.load()
    assert _count(m, RESTORES, "unreadable") == 1
    assert k.path.with_name("anomaly.state.unreadable").exists()
    assert not k.path.exists()


def test_missed_counts_what_a_later_checkpoint_holds_and_the_model_does_not() -> None:
    assert missed(1500, 1000) == 500
    assert missed(1000, 1500) == 0  # saved after the checkpoint: the frontier drops the rest
    assert missed(None, 1000) is None  # no checkpoint restored: unknown
    assert stream_name(MQ) == "mqtt wd-1 logs/+/access"


# -- which keeper the service runs ------------------------------------------------------------
def _service(tmp: Path, *, kafka: bool, mqtt: bool, clean_session: bool = False) -> Service:
    doc: dict[str, object] = {
        "kafka": {"consume": kafka},
        "model_state": {"path": str(tmp / "anomaly.state")},
        "sinks": {"jsonl": {"path": str(tmp / "alerts.jsonl")}},
    }
    if mqtt:
        doc["mqtt"] = {"client_id": "wd-1", "subscribe": ["logs/+/access"],
                       "clean_session": clean_session,
                       "checkpoint": {"path": str(tmp / "mqtt.checkpoint")}}
    path = tmp / "watchdog.yaml"
    path.write_text(yaml.safe_dump(doc))
    return Service(load_config(str(path)), engine(), metrics=Metrics(), stages=[SeenStage()],
                   listen=False)


def test_the_service_keeps_the_model_state_with_kafka_mqtt_or_both(tmp_path: Path) -> None:
    only_mqtt = _service(tmp_path, kafka=False, mqtt=True)
    assert isinstance(only_mqtt.model_state, StreamStateKeeper)
    assert only_mqtt.model_state.checkpoints is not None  # (it says how far the rules got)
    only_kafka = _service(tmp_path, kafka=True, mqtt=False)
    assert type(only_kafka.model_state) is ModelStateKeeper
    both = _service(tmp_path, kafka=True, mqtt=True)
    assert isinstance(both.model_state, DualStateKeeper)
    # a stop leaves the buffer as Kafka does: the persistent session delivers MQTT's again
    assert [(s.name, s.rereads) for s in both.sources] == [("kafka", True), ("mqtt", True)]
    clean = _service(tmp_path, kafka=True, mqtt=True, clean_session=True)
    assert [s.rereads for s in clean.sources] == [True, False]  # (model_state_inexact_stop)


def _restored_without_checkpoint(tmp: Path) -> tuple[Metrics, SeenStage, Log]:
    """A state of three events saved, then restored by a keeper given no checkpoint (as
    ``mqtt.checkpoint: null`` or the anomaly service's): its metrics, stage and log."""
    m, s1 = Metrics(), SeenStage()
    p1 = _pipeline(s1)
    Stream(p1).send(_raws([1, 2, 3]))
    p1.mark_idle(MQTT_STREAM)
    assert asyncio.run(_keeper(tmp, s1, p1, m).save())
    s2, log = SeenStage(), Log()
    k = StreamStateKeeper(ModelState(), MQ, stage=s2, pipeline=_pipeline(s2), metrics=m,
                          log=log, path=tmp / "anomaly.state")
    k.load()
    return m, s2, log


def test_without_a_checkpoint_the_state_is_restored_and_what_it_missed_is_unknown(
        tmp_path: Path) -> None:
    """``mqtt.checkpoint: null`` or the anomaly service (no rules' checkpoint): restored, the
    count of missed events unknown (null in the log line, which names no event)."""
    m, s2, log = _restored_without_checkpoint(tmp_path)
    assert _count(m, RESTORES, "restored") == 1
    assert s2.seen == ["e0", "e1", "e2"]
    [(_, said)] = [line for line in log.lines if line[0] == "model_state_restored"]
    assert said["events_missed"] is None
    assert not any("e0" in str(v) for v in said.values())


def test_without_a_checkpoint_the_gauge_does_not_say_that_nothing_was_missed(
        tmp_path: Path) -> None:
    """docs/configuration.md: ``events_missed``, also the gauge, is "null without a
    checkpoint"; 0 says "none missed", which a crash of the anomaly service does not know."""
    m, _, _ = _restored_without_checkpoint(tmp_path)
    value = m.registry.get_sample_value("watchdog_model_state_missed_events")
    assert value is None or math.isnan(value), value
