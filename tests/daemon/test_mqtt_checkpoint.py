"""MQTT windows through a kill -9, against the real mosquitto and a real ``watchdog run``.

Nine failed logins are processed and acknowledged (a checkpoint of the state holds them: the
broker forgets them), three more arrive, kill -9 while they wait in the reorder buffer; after
the restart the checkpoint brings the nine back and the broker redelivers the three:
``brute_force`` is raised, and the alerts of both runs are exactly those replay raises over the
twelve. A checkpoint that cannot be read is set aside with a one-line error and the daemon
starts empty (no crash loop).
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.builders import event_doc
from tests.daemon.helpers import World, wait_for
from tests.daemon.kafkautil import daemon_config, make_topics, produce_state
from tests.daemon.test_mqtt_ack import TOPIC, alerts_in, publish
from tests.daemon.test_restart import scrape
from tests.services.exposition import total
from tests.services.procs import ManagedProcess, free_port, wait_for_http
from watchdog.decode import Decoder
from watchdog.engine.detector import Detector
from watchdog.engine.ordering import Reorderer
from watchdog.events import AccessEvent, check_times

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def logins(world: World, start: datetime, n: int) -> list[bytes]:
    user = orjson.loads(world.directory[0])["user_id"]
    return [orjson.dumps(event_doc(action="login", outcome="failure", data=False,
                                   dataset="idp.auth", user=user,
                                   when=start + timedelta(seconds=i))) for i in range(n)]


def replayed(world: World, docs: list[bytes]) -> set[str]:
    """The alert ids replay raises over ``docs`` (the same engine, time order, flushed)."""
    det = Detector(world.engine(), Reorderer(lateness=60.0))
    dec = Decoder(AccessEvent, check=check_times)
    ids: list[str] = []
    for raw in docs:
        ev = dec.decode(raw)
        assert isinstance(ev, AccessEvent), ev
        ids += [a.alert_id for a in det.push(ev, ev.timestamp.timestamp()).alerts]
    ids += [a.alert_id for a in det.flush()]
    return set(ids)


def alert_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [orjson.loads(line)["alert_id"] for line in path.read_bytes().splitlines() if line]


def daemon(cfg: Path) -> ManagedProcess:
    return ManagedProcess("watchdog", [sys.executable, "-m", "watchdog", "run", "--config",
                                       str(cfg)], cwd=ROOT, stop_timeout=12.0)


@pytest.fixture
def setup(tansu_broker, mosquitto_broker, world: World, tmp_path: Path):  # type: ignore[no-untyped-def]
    bs, mq = tansu_broker.bootstrap_servers, mosquitto_broker
    world = dataclasses.replace(world, subjects=[])  # (erasure deadlines would fall due)
    port = free_port()
    ck = tmp_path / "state" / "mqtt.checkpoint"
    ck.parent.mkdir()

    def config(idle_after: float, client_id: str = "watchdog-ckpt") -> Path:
        return daemon_config(
            tmp_path / "watchdog.yaml", bs, listen=f"127.0.0.1:{port}",
            policy=str(world.policy), kafka={"consume": False},
            mqtt={"host": mq.host, "port": mq.port, "subscribe": [TOPIC],
                  "client_id": client_id, "idle_after_seconds": idle_after,
                  "checkpoint": {"path": str(ck), "every_seconds": 0.2}},
            sinks={"jsonl": {"path": str(tmp_path / "alerts.jsonl")}})

    return bs, mq, world, f"http://127.0.0.1:{port}", config, ck


async def test_a_window_of_acknowledged_messages_survives_kill_9(setup, tmp_path: Path) -> None:
    bs, mq, world, url, config, ck = setup
    await make_topics(bs, partitions=1)
    await produce_state(bs, world)
    out = tmp_path / "alerts.jsonl"
    start = datetime.now(UTC) - timedelta(seconds=30)
    nine, three = logins(world, start, 12)[:9], logins(world, start, 12)[9:]
    first = daemon(config(5.0))
    with first:
        wait_for_http(f"{url}/readyz", timeout=30)
        await publish(mq.host, mq.port, nine)

        def acknowledged() -> bool:
            m = scrape(f"{url}/metrics")
            return (total(m, "watchdog_events_total") == 9
                    and m.get("watchdog_mqtt_unacknowledged") == 0
                    and m.get('watchdog_checkpoints_total{result="written"}', 0) >= 1)

        await wait_for(acknowledged, within=20, interval=0.1,
                       what="the nine processed, checkpointed and acknowledged")
        await publish(mq.host, mq.port, three)
        await wait_for(lambda: total(scrape(f"{url}/metrics"), "watchdog_events_total") == 12,
                       within=10, interval=0.05, what="the three more consumed")
        assert first.stop(kill=True) == -signal.SIGKILL
    assert "brute_force" not in alerts_in(out)  # the three were in the reorder buffer (5 s)
    assert ck.exists()
    second = daemon(config(1.0))
    with second:
        wait_for_http(f"{url}/readyz", timeout=30)

        def settled() -> bool:
            m = scrape(f"{url}/metrics")
            return (total(m, "watchdog_events_total") >= 3
                    and m.get("watchdog_mqtt_unacknowledged") == 0)

        await wait_for(settled, within=20, interval=0.1,
                       what="the three redelivered, processed and acknowledged")
        assert total(scrape(f"{url}/metrics"), "watchdog_events_total") == 3  # not the nine
        assert second.stop() == 0
    assert alerts_in(out).count("brute_force") == 1
    assert set(alert_ids(out)) == replayed(world, nine + three)


async def test_an_unreadable_checkpoint_is_set_aside_and_the_daemon_starts_empty(
        setup) -> None:
    bs, _mq, _world, url, config, ck = setup
    await make_topics(bs, partitions=1)
    ck.write_bytes(b"WDCKPT\x00\x01" + b"\x00" * 40)  # a checksum that does not match
    proc = daemon(config(1.0, client_id="watchdog-ckpt-bad"))
    with proc:
        wait_for_http(f"{url}/readyz", timeout=30)
        m = scrape(f"{url}/metrics")
        assert m.get('watchdog_checkpoints_total{result="unreadable"}') == 1
        assert proc.stop() == 0
        errors = [ln for ln in proc.log_text().splitlines() if "checkpoint_unreadable" in ln]
    assert len(errors) == 1
    assert "checksum mismatch" in errors[0]
    assert (ck.parent / "mqtt.checkpoint.unreadable").exists()
    assert not ck.exists()  # (nothing came to checkpoint) and the bad one is not read again
