"""The anomaly model's learnt state across restarts with Kafka **and** MQTT in one instance
(watchdog/daemon/model_state_dual.py), with real processes: Tansu, mosquitto and ``watchdog
run`` with ``model:`` (the tiny model) and ``model_state:``, the stream of
:mod:`tests.fuzz._anomaly_stream` split by account (odd accounts over MQTT, even ones over
Kafka, as produced: one event after the other, Kafka's batched), against ``watchdog replay
--model`` (alerts compared before the end marker's scoring window).

- **SIGTERM** in the middle of u010's second night of copies (over Kafka), MQTT's events
  ``LEAD`` ahead of Kafka's (Kafka behind: the rest of u010's copies not produced yet), the
  last minute in the reorder buffer: the stop leaves it (Kafka uncommitted, MQTT
  unacknowledged), the restart restores the state at the first assignment (MQTT waits for
  it), re-reads Kafka and gets MQTT's messages again: the alerts are exactly replay's.
  Measured with the stop processing the buffer (the MQTT source not reading again, as with
  MQTT alone): the rest of u010's copies lie behind the saved frontier and the restored
  stage drops them; the alerts differ.
- **kill -9** after a night of u011's (MQTT) and u010's (Kafka) copies, the state saved before
  it (by a SIGTERM; no periodic save), everything read, processed, committed and
  acknowledged: restored, Kafka read again from the save, the MQTT events since the save lost
  to the model (``events_missed`` null: no rules' checkpoint beside Kafka; the save's age
  said). ``detection.only: anomaly`` (no rules, whose MQTT windows a restart loses beside
  Kafka, ``checkpoint_off``) and compared with the same pipeline in this process where the
  model goes on from the save without those MQTT events: exactly that loss, no reset.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.anomaly.conftest import directory_records
from tests.daemon.helpers import CollectAlerts, NoDeadLetters, QuietLog
from tests.fuzz._anomaly_live import RESTORED
from tests.fuzz._anomaly_stream import (
    ACCOUNTS,
    DAY,
    KILLED,
    NEVER,
    RAWS,
    SAVED,
    TERM_AT,
    TIMES,
    USERS,
    Alerts,
    before_cut,
    engine,
    explain,
)
from tests.fuzz._daemon_process import FAST_GROUP, IDLE, Daemon, wait_until, write_live_config
from tests.fuzz._live_broker import SENTINEL, comparable
from tests.fuzz.test_live_broker_anomaly_seek import restored_line
from tests.services.fixtures import create_topics, unique_name
from tests.services.mosquitto import Mosquitto
from tests.services.procs import free_port
from tests.services.tansu import TansuBroker
from watchdog.alerts.model import encode_alert
from watchdog.anomaly.stage import load_stage
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.pipeline import Pipeline
from watchdog.daemon.sources.base import MQTT_STREAM, Raw

pytestmark = pytest.mark.integration

MQ = [int(u[1:]) % 2 == 1 for u in USERS]  # by event: over MQTT (odd accounts), else Kafka
# by event: its Kafka offset, or its number in the MQTT stream (sentinels aside)
OFFSET = [sum(1 for j in range(i) if MQ[j] == MQ[i]) for i in range(len(USERS))]


LEAD = 40  # at the SIGTERM, MQTT's events this far ahead of Kafka's (u010's copies: Kafka's)


def _config(tmp: Path, bs: str, mq: Mosquitto, port: int, model: Path, only: str | None,
            ) -> tuple[Path, dict[str, str], str]:
    topic = f"logs/{unique_name('idp')}/access"
    # (the end marker, two days on, is not held as a stray dated ahead of the present)
    detection: dict[str, Any] = {"lateness_seconds": 60.0, "future_seconds": 4 * DAY}
    if only:
        detection["only"] = only
    path, topics = write_live_config(
        tmp, bs, port, model, state_every=NEVER, kafka=FAST_GROUP, detection=detection,
        mqtt={"host": mq.host, "port": mq.port, "subscribe": [topic],
              "client_id": unique_name("wd"), "idle_after_seconds": IDLE, "checkpoint": None})
    return path, topics, topic


async def _handled(daemon: Daemon, what: str) -> None:
    """Until every partition and the stream are idle, the reorder buffer empty (released at
    the idle pause, the stage drained), every alert accepted by the sink and every message
    acknowledged."""
    async def done() -> bool:
        m = await daemon.metrics()
        return (m.get('watchdog_queue_depth{queue="reorder"}', 1) == 0
                and all(v == 0 for k, v in m.items() if k.startswith("watchdog_queue_depth"))
                and m.get("watchdog_mqtt_unacknowledged", 1) == 0)

    await daemon.idle(1, what)
    await wait_until(done, what, daemon.proc)


async def deliver(bs: str, mq: Mosquitto, tmp: Path, model: Path,
                  stops: list[tuple[int, str]], only: str | None = None, lead: int = 0,
                  ) -> tuple[set[bytes], list[dict[str, Any]]]:
    """The stream produced to Kafka and published over MQTT; after event ``k`` of each
    ``(k, how)`` of ``stops`` is read, ``term`` (SIGTERM at once) or ``kill`` (kill -9 once
    it is handled) and a restart. MQTT's events run ``lead`` events ahead of Kafka's at a
    stop (Kafka is behind: the events it has not produced yet lie behind MQTT's). The alerts
    before the cut, and each restart's ``model_state_restored`` line and restores."""
    port = free_port()
    cfg, topics, topic = _config(tmp, bs, mq, port, model, only)
    await create_topics(bs, [topics["access_logs"]], partitions=1)
    await create_topics(bs, [topics[t] for t in ("directory", "subjects", "alerts", "dlq")])
    producer = AIOKafkaProducer(bootstrap_servers=bs, acks="all", linger_ms=5)
    await producer.start()
    daemon = Daemon(cfg, port)
    restarts: list[dict[str, Any]] = []
    try:
        await asyncio.gather(*[await producer.send(topics["directory"], msgspec.json.encode(d),
                                                   key=d["user_id"].encode())
                               for d in directory_records(ACCOUNTS)])
        await daemon.start(1)
        lo = {False: 0, True: 0}  # per source (MQTT True): the next event to send
        async with aiomqtt.Client(mq.host, mq.port, identifier=unique_name("shipper")) as c:
            for hi, how in [*stops, (len(RAWS), "end")]:
                sent = []
                upto = {False: hi, True: min(len(RAWS), hi + lead)}
                for i in range(min(lo.values()), max(upto.values())):
                    if not lo[MQ[i]] <= i < upto[MQ[i]]:
                        continue
                    if MQ[i]:
                        await c.publish(topic, RAWS[i], qos=1)
                    else:
                        sent.append(await producer.send(
                            topics["access_logs"], RAWS[i], partition=0,
                            timestamp_ms=int(TIMES[i] * 1000)))
                await c.publish(topic, SENTINEL, qos=1)
                sent.append(await producer.send(topics["access_logs"], SENTINEL, partition=0))
                await asyncio.gather(*sent)
                lo = upto
                if how == "term":  # (each restart counts from 0: a term is the first stop)
                    await daemon.read_to(2, f"events up to {hi} read")
                else:
                    await _handled(daemon, f"events up to {hi} handled")
                m = await daemon.metrics()
                assert sum(v for k, v in m.items() if k.startswith("watchdog_events_late")) == 0
                if how == "end":
                    break
                if how == "kill":
                    daemon.proc.stop(kill=True)
                else:
                    assert daemon.proc.stop() == 0, daemon.proc.log_tail()
                await daemon.start(1)
                m = await daemon.metrics()
                restarts.append({"after": how, "restored": m.get(RESTORED, 0.0),
                                 "line": restored_line(daemon)})
        assert daemon.proc.stop() == 0, daemon.proc.log_tail()
        log = daemon.proc.log_text()
    finally:
        await producer.stop()
        await daemon.close()
    assert "shutdown_without_flush" in log or not any(h == "term" for _, h in stops)
    lines = [ln for ln in (tmp / "alerts.jsonl").read_bytes().splitlines() if _parses(ln)]
    return before_cut(comparable(lines)), restarts


def _id(alert: bytes) -> str:
    return str(orjson.loads(alert)["alert_id"])


def _parses(line: bytes) -> bool:  # (a line torn by the kill -9: its alert was sent again)
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _anomaly_only(model: Path, saved: int, killed: int, *, lost: bool = True) -> set[bytes]:
    """The anomaly service's alerts through the daemon's pipeline in this process, reading
    Kafka and MQTT as the daemon does: the model saved once the first ``saved`` events are
    read (the last minute still buffered, as at the daemon's SIGTERM), the stream read on to
    ``killed`` and handled, then (``lost``) a new pipeline from the save, fed what Kafka reads
    again and the MQTT events after ``killed``: the MQTT events released since the save are
    the model's loss. Not ``lost``: no kill."""
    def pipeline(committed: int = 0) -> tuple[Pipeline, Any, CollectAlerts]:
        eng = engine()
        stage = load_stage(model, eng)
        out = CollectAlerts()
        p = Pipeline(eng, out, NoDeadLetters(), Metrics(),  # type: ignore[arg-type]
                     QuietLog(), stages=[stage], lateness=60.0, rules=False)
        # (Kafka records below the committed offset, read again, raise no alert: sent before)
        p.open_partition(0, committed, start=0, resume=committed)
        p.track_stream(MQTT_STREAM)
        return p, stage, out

    def feed(p: Pipeline, idx: list[int], *, idle: bool = True) -> None:
        for i in idx:
            q = MQTT_STREAM if MQ[i] else 0
            p.ingest(q, [Raw(RAWS[i], OFFSET[i], q)], "logs")
        if idle:
            p.mark_idle(0)
            p.mark_idle(MQTT_STREAM)

    p1, stage1, out1 = pipeline()
    feed(p1, list(range(saved)), idle=False)
    kept = stage1.snapshot()
    if not lost:
        feed(p1, list(range(saved, len(RAWS))))
        return before_cut(comparable([encode_alert(a) for a in out1.alerts]))
    feed(p1, list(range(saved, killed)))
    p2, stage2, out2 = pipeline(committed=sum(1 for i in range(killed) if not MQ[i]))
    stage2.restore(kept)  # (its frontier drops what Kafka reads again that it holds)
    feed(p2, [i for i in range(len(RAWS)) if i >= killed or not MQ[i]])
    return before_cut(comparable([encode_alert(a) for a in [*out1.alerts, *out2.alerts]]))


@pytest.fixture(scope="module")
def brokers(tansu_broker_module: TansuBroker,
            mosquitto_broker_module: Mosquitto) -> tuple[str, Mosquitto]:
    return tansu_broker_module.bootstrap_servers, mosquitto_broker_module


async def test_a_sigterm_mid_stream_keeps_what_the_model_learnt_from_both(
        brokers: tuple[str, Mosquitto], tiny_model: Path, reference: Alerts,
        tmp_path: Path) -> None:
    live, restarts = await deliver(*brokers, tmp_path, tiny_model, [(TERM_AT, "term")],
                                   lead=LEAD)
    assert live == reference, explain(sorted(reference - live), sorted(live - reference))
    [r] = restarts
    assert r["restored"] == 1, r


async def test_a_kill_costs_the_model_only_the_mqtt_events_since_its_save(
        brokers: tuple[str, Mosquitto], tiny_model: Path, tmp_path: Path) -> None:
    night = [MQ[i] for i in range(SAVED, KILLED)]
    assert any(night)  # (the MQTT part lost, the Kafka part read again)
    assert not all(night)
    expected = _anomaly_only(tiny_model, SAVED, KILLED)
    live, restarts = await deliver(*brokers, tmp_path, tiny_model,
                                   [(SAVED, "term"), (KILLED, "kill")], only="anomaly")
    # (an alert the restored model raises again for a Kafka record read again, with the score
    # it gives without the lost MQTT events, is sent again or not, by when it is scored: the
    # same alert_id either way)
    assert live <= expected, explain(sorted(expected - live), sorted(live - expected))
    assert {_id(a) for a in live} == {_id(a) for a in expected}
    assert [(r["after"], r["restored"]) for r in restarts] == [("term", 1), ("kill", 1)]
    line = restarts[1]["line"]
    assert line["events_missed"] is None, line  # (uncountable: no checkpoint beside Kafka)
    assert line["mqtt_missed_since"] > 0, line
    assert not live <= _anomaly_only(tiny_model, SAVED, KILLED, lost=False)  # a real loss
