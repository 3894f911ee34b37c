"""The anomaly service's risk from the rules service's alerts (watchdog.daemon.rule_alert_feed),
without a broker: what the feed takes, and that the risk it gives equals one process's.

The stream is the live anomaly tests' (tests/fuzz/_anomaly_stream.py): replay over it (rules
and model in one process) raises two risk alerts, u010's first night and the insider u004's
night; the model's stage alone (the anomaly service before the feed) raises one, u010's, at
another time, and misses the insider. With the rules' alerts handed to the stage by the feed,
before the events reach it (the rules service ahead) or five minutes of event time after
them (behind), the stage raises replay's two exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.daemon.helpers import RecordingLog
from tests.fuzz import _anomaly_stream as stream
from tests.fuzz._live_broker import comparable
from watchdog.alerts.model import Alert, encode_alert
from watchdog.anomaly.stage import load_stage
from watchdog.daemon.rule_alert_feed import HOLD_SECONDS, MAX_HELD, RuleAlertFeed
from watchdog.decode import Decoder
from watchdog.engine.detector import Detector
from watchdog.engine.ordering import Reorderer
from watchdog.events import AccessEvent, check_times
from watchdog.replay import REPLAY_RELEASE_STEP


def _alert(aid: str, user: str, rule: str = "bulk_export", ts: str = "2026-11-02T00:00:00Z",
           severity: str = "high") -> bytes:
    return encode_alert(Alert(aid, rule, severity, ts, user, ("e1",), "s"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _feed(tracked: set[str], clock: Clock) -> tuple[RuleAlertFeed, list[Alert],
                                                     dict[str, int]]:
    got: list[Alert] = []
    counts: dict[str, int] = {}

    def count(result: str, n: int) -> None:
        counts[result] = counts.get(result, 0) + n

    return RuleAlertFeed("alerts", {}, observe=got.extend, tracks=tracked.__contains__,
                         count=count, log=RecordingLog(), clock=clock), got, counts


def test_takes_rule_alerts_of_its_accounts_in_time_order() -> None:
    clock, tracked = Clock(), {"u1"}
    feed, got, counts = _feed(tracked, clock)
    feed.take([_alert("b", "u1", ts="2026-11-02T00:00:02Z"), b"not json", b'{"alert_id": 1}',
               _alert("a", "u1", ts="2026-11-02T00:00:01Z"), _alert("m", "u1", rule="anomaly"),
               _alert("c", "u2")])
    assert [a.alert_id for a in got] == ["a", "b"]  # its own anomaly alert left out
    assert counts == {"invalid": 2, "taken": 2}
    # u2's waits for its events; they come: it is taken
    tracked.add("u2")
    feed.take([])
    assert [a.alert_id for a in got] == ["a", "b", "c"]
    assert not feed.held


def test_an_alert_older_than_the_ledger_remembers_is_skipped() -> None:
    """Read again after a restart (a day back), an alert the ledger no longer knows it took
    would be counted twice: skipped as old."""
    feed, got, counts = _feed({"u1"}, Clock())
    feed.forgets_before = lambda: 1_793_577_601.0  # 2026-11-02T00:00:01Z
    feed.take([_alert("old", "u1", ts="2026-11-02T00:00:00Z"),
               _alert("new", "u1", ts="2026-11-02T00:00:01Z")])
    assert [a.alert_id for a in got] == ["new"]
    assert counts == {"old": 1, "taken": 1}


def test_an_alert_of_an_account_never_seen_is_dropped_after_the_hold() -> None:
    clock = Clock()
    feed, got, counts = _feed(set(), clock)
    feed.take([_alert("x", "u9")])
    clock.now = HOLD_SECONDS - 1
    feed.take([])
    assert "x" in feed.held
    clock.now = HOLD_SECONDS + 1
    feed.take([])
    assert (got, feed.held, counts) == ([], {}, {"foreign": 1})


def test_held_alerts_go_to_the_stage_when_it_first_sees_the_account() -> None:
    """Not at the next fetch: by then the account's first windows may be scored."""
    clock = Clock()
    feed, got, counts = _feed(set(), clock)
    feed.take([_alert("x", "u9", ts="2026-11-02T00:00:02Z"),
               _alert("w", "u9", ts="2026-11-02T00:00:01Z"), _alert("y", "u8")])
    assert (got, set(feed.waiting)) == ([], {"u8", "u9"})
    feed.seen("u7")  # nothing held for it
    feed.seen("u9")
    assert [a.alert_id for a in got] == ["w", "x"]
    assert (set(feed.held), set(feed.waiting)) == ({"y"}, {"u8"})
    clock.now = HOLD_SECONDS + 1
    feed.take([])  # u8 never came: dropped, and not waited for any more
    assert (feed.held, feed.waiting, counts) == ({}, {}, {"taken": 2, "foreign": 1})


def test_reached_says_whether_every_alert_below_the_ends_was_read() -> None:
    from aiokafka import TopicPartition

    feed, _, _ = _feed(set(), Clock())
    t0, t1 = TopicPartition("alerts", 0), TopicPartition("alerts", 1)
    assert feed.reached({})
    assert feed.reached({t0: 0})  # an empty partition: nothing to read
    assert not feed.reached({t0: 3})  # not opened yet
    feed.resume = {t0: 3, t1: 1}
    assert feed.reached({t0: 3, t1: 1})
    assert not feed.reached({t0: 3, t1: 2})


def test_the_held_alerts_are_bounded_oldest_out() -> None:
    feed, _, counts = _feed(set(), Clock())
    feed.take([_alert(f"a{i:05d}", "u9") for i in range(MAX_HELD + 5)])
    assert len(feed.held) == MAX_HELD == len(feed.waiting["u9"])
    assert next(iter(feed.held)) == "a00005"
    assert counts == {"foreign": 5}


def _stage_alone(model: Path, rule_alerts: list[bytes], lag: float | None,
                 tick: bool = False) -> set[bytes]:
    """The stage alone over the stream (the anomaly service), the rules' alerts handed over by
    the feed: all before the first event (``lag`` None), or each ``lag`` seconds of event time
    after its own time; ``tick``: the daemon's tick after each hand-over, the late ones applied
    at once (as the anomaly service does)."""
    eng = stream.engine()
    stage = load_stage(model, eng)
    stage.late_rule_alerts = tick
    detector = Detector(eng, Reorderer(release_step=REPLAY_RELEASE_STEP), [stage], rules=False)
    feed = RuleAlertFeed("alerts", {}, observe=stage.observe_alerts, tracks=stage.tracks,
                         count=lambda _r, _n: None, log=RecordingLog())
    stage.on_new_account(feed.seen)  # (as configured_feed wires it)
    pending = sorted(rule_alerts, key=lambda a: orjson.loads(a)["ts"])
    due = [stream.epoch(orjson.loads(a)["ts"]) + (lag or 0.0) for a in pending]
    decoder = Decoder(AccessEvent, check=check_times)
    out: list[Alert] = []
    j = 0
    if lag is None:
        feed.take(pending)
        j = len(pending)
    for raw in stream.RAWS:
        ev = decoder.decode(raw)
        assert isinstance(ev, AccessEvent)
        t = ev.timestamp.timestamp()
        k = j
        while k < len(pending) and due[k] <= t:
            k += 1
        if k > j:  # (all before the first event: held for accounts not seen, never re-taken)
            feed.take(pending[j:k])
        if tick and k > j:
            out.extend(detector.tick())
        j = k
        out.extend(detector.push(ev, t).alerts)
    if j < len(pending):
        feed.take(pending[j:])
    out.extend(detector.flush())
    return comparable([encode_alert(a) for a in out])


@pytest.fixture(scope="module")
def replayed(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> set[bytes]:
    return stream._replayed(tiny_model, tmp_path_factory.mktemp("replay"))


@pytest.mark.parametrize("lag", [None, 300.0])
def test_the_split_risk_equals_one_process_s(tiny_model: Path, replayed: set[bytes],
                                             lag: Any) -> None:
    def risk(alerts: set[bytes]) -> set[bytes]:
        return {a for a in alerts if stream.kind(a) == "risk"}

    users = sorted(orjson.loads(a)["user_id"] for a in risk(replayed))
    assert users == ["u004", "u010"]
    # the stage alone, as the anomaly service ran it before: not the same risk alerts
    assert risk(stream._alone(tiny_model)) != risk(replayed)
    rules = [a for a in replayed if stream.kind(a) == "rule"]
    got = _stage_alone(tiny_model, rules, lag)
    assert risk(got) == risk(replayed)
    assert {a for a in got if stream.kind(a) == "window"} == {
        a for a in replayed if stream.kind(a) == "window"}


def test_late_rule_alerts_applied_at_the_tick_still_find_the_insider(
        tiny_model: Path, replayed: set[bytes]) -> None:
    """Rule alerts an hour of event time late, applied at the next tick (their windows scored
    already): the same accounts raise risk alerts, at other times (decayed, not replay's)."""
    rules = [a for a in replayed if stream.kind(a) == "rule"]
    got = _stage_alone(tiny_model, rules, 3600.0, tick=True)

    def users(alerts: set[bytes]) -> set[str]:
        return {orjson.loads(a)["user_id"] for a in alerts if stream.kind(a) == "risk"}

    assert users(stream.before_cut(got)) == users(replayed) == {"u004", "u010"}
