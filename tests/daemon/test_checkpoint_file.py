"""The checkpoint file (watchdog.daemon.checkpoint): written whole and private, not taken while
an alert is in flight, a failed write counted and retried, an unusable file set aside."""

from __future__ import annotations

import stat
from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.builders import KEY, login, policy
from watchdog.alerts.pseudonym import Pseudonymizer
from watchdog.daemon.checkpoint import Checkpoints, decode
from watchdog.daemon.logging import get_logger
from watchdog.daemon.metrics import Metrics
from watchdog.daemon.offsets import PartitionBook
from watchdog.daemon.settings import Mqtt, MqttCheckpoint
from watchdog.engine.detector import Detector
from watchdog.engine.engine import Engine
from watchdog.engine.ordering import Reorderer
from watchdog.events import epoch
from watchdog.rules import default_rules


def checkpoints(path: Path, metrics: Metrics, settled: bool = True) -> Checkpoints:
    det = Detector(Engine(policy(), Pseudonymizer(KEY), default_rules()), Reorderer(lateness=0))
    for i in range(3):
        ev = login(outcome="failure", when=f"2026-11-18T01:00:0{i}Z")
        det.push(ev, epoch(ev.timestamp))
    m = Mqtt(subscribe=["a/b"], checkpoint=MqttCheckpoint(path=str(path)))
    return Checkpoints(m, det, metrics, get_logger("test"), settled=lambda: settled, path=path)


def count(metrics: Metrics, result: str) -> float:
    return metrics.registry.get_sample_value("watchdog_checkpoints_total",
                                             {"result": result}) or 0.0


def book(done: int) -> PartitionBook:
    b = PartitionBook(0, 0)
    b.log = [(i, f"ev-{i}") for i in range(done)]
    b.consumed(done)
    return b


def test_written_whole_private_and_read_back(tmp_path: Path) -> None:
    m = Metrics(CollectorRegistry())
    ck = checkpoints(tmp_path / "c.checkpoint", m)
    b = book(5)
    assert ck.take(b, log_from=2) == 5
    path = tmp_path / "c.checkpoint"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "c.checkpoint.tmp").exists()
    state = decode(path.read_bytes())
    assert state["done"] == ["ev-2", "ev-3", "ev-4"]  # what may come again
    assert len(state["rules"]["brute_force"][3]) == 1  # the account's window
    assert b.log == [(2, "ev-2"), (3, "ev-3"), (4, "ev-4")]
    assert count(m, "written") == 1


def test_not_taken_while_an_alert_waits_for_a_sink(tmp_path: Path) -> None:
    m = Metrics(CollectorRegistry())
    b = book(3)
    assert checkpoints(tmp_path / "c", m, settled=False).take(b, 0) is None
    b.add_inflight(1)  # (a dead letter, say)
    assert checkpoints(tmp_path / "c", m).take(b, 0) is None
    assert not (tmp_path / "c").exists()
    b.done_inflight(1)
    assert checkpoints(tmp_path / "c", m).take(b, 0) == 3


def test_a_failed_write_is_counted_and_acknowledges_nothing(tmp_path: Path) -> None:
    m = Metrics(CollectorRegistry())
    ck = checkpoints(tmp_path / "missing" / "c.checkpoint", m)
    assert ck.take(book(3), 0) is None
    assert count(m, "failed") == 1
    (tmp_path / "missing").mkdir()
    assert ck.take(book(3), 0) == 3  # retried at the next one


def test_an_unusable_file_is_set_aside_and_the_state_stays_empty(tmp_path: Path) -> None:
    m = Metrics(CollectorRegistry())
    path = tmp_path / "c.checkpoint"
    checkpoints(path, m).take(book(1), 0)
    path.write_bytes(path.read_bytes()[:-3])  # truncated
    fresh = checkpoints(path, m)
    assert fresh.load() is False
    assert count(m, "unreadable") == 1
    assert not path.exists()
    assert (tmp_path / "c.checkpoint.unreadable").exists()
    assert fresh.load() is False  # none now: no crash loop, nothing counted again
    assert count(m, "unreadable") == 1


def test_a_rule_state_of_another_shape_is_refused_before_anything_is_restored(
        tmp_path: Path) -> None:
    from watchdog.daemon.checkpoint import encode
    from watchdog.engine import snapshot

    m = Metrics(CollectorRegistry())
    path = tmp_path / "c.checkpoint"
    ck = checkpoints(path, m)
    state = snapshot.capture(ck.detector, [])
    state["rules"]["brute_force"] = {"not": "a window"}
    path.write_bytes(encode("x", state))
    fresh = checkpoints(path, m)
    before = fresh.detector.engine.window_sizes()
    assert fresh.load() is False
    assert fresh.detector.engine.window_sizes() == before
    assert count(m, "unreadable") == 1


def test_a_rule_state_that_fails_is_logged_without_the_values_it_failed_on(
        tmp_path: Path) -> None:
    """The error's type and where it was raised, never its message: a restore that fails on
    the state's data may quote an account or subject id (watchdog.engine.faults)."""
    from structlog.testing import capture_logs

    from tests.privacy.scan import scan_for_ids
    from watchdog.daemon.checkpoint import encode
    from watchdog.engine import snapshot

    secret = "c-SECRET-0001"
    m = Metrics(CollectorRegistry())
    path = tmp_path / "c.checkpoint"
    ck = checkpoints(path, m)
    state = snapshot.capture(ck.detector, [])
    # an erasure request of a shape this code does not know: a field named by a subject id
    state["rules"]["erasure_overdue"] = {"k": {"owing": [], secret: 1.0}}
    path.write_bytes(encode("x", state))
    with capture_logs() as logs:
        assert checkpoints(path, m).load() is False
    assert scan_for_ids([repr(e) for e in logs], {secret}) == []
    [line] = [e for e in logs if e["event"] == "checkpoint_unreadable"]
    assert "state of erasure_overdue unreadable: TypeError at " in line["error"]


def test_where_it_is_written() -> None:
    from watchdog.daemon.checkpoint import default_path

    m = Mqtt(client_id="../site/a b")
    assert default_path(m, {}) == Path("mqtt-.._site_a_b.checkpoint")
    assert default_path(m, {"STATE_DIRECTORY": "/var/lib/watchdog:/other"}) == Path(
        "/var/lib/watchdog/mqtt-.._site_a_b.checkpoint")
    mine = Mqtt(checkpoint=MqttCheckpoint(path="/srv/wd.checkpoint"))
    assert default_path(mine, {"STATE_DIRECTORY": "/var/lib/watchdog"}) == Path(
        "/srv/wd.checkpoint")
