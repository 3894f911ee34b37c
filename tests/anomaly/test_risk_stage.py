"""The person-level risk inside the anomaly stage: the rules' alerts reach it through the
Detector, its alerts are traceable, live equals replay, labels damp."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.anomaly.conftest import T0, decode, insider_docs, make_engine
from watchdog.alerts.model import Alert, rfc3339
from watchdog.anomaly.labels import Label, Labels
from watchdog.anomaly.risk import Contribution, RiskAlert
from watchdog.anomaly.stage import AnomalyStage, load_stage
from watchdog.engine.detector import Detector
from watchdog.engine.ordering import Reorderer
from watchdog.events import DirectoryRecord


def detect(stage: AnomalyStage, docs: list[dict], *, early: bool = False,
           tick_every: int = 0, batch: int = 0) -> list[Alert]:
    """``batch``: the stages get what that many pushes release at once (the daemon's
    consumed batch: ``hold_stages``; ticks and the flush release what is held too)."""
    det = Detector(stage.engine, Reorderer(lateness=120.0) if early else None, [stage],
                   early=early, hold_stages=bool(batch))
    alerts: list[Alert] = []
    for n, doc in enumerate(docs, 1):
        ev = decode(doc)
        alerts += det.push(ev, ev.timestamp.timestamp()).alerts
        if batch and n % batch == 0:
            alerts += det.release_stages()
        if tick_every and n % tick_every == 0:
            alerts += det.tick()
    return alerts + det.flush()


def stage_for(model: Path) -> AnomalyStage:
    return load_stage(model, make_engine(), warmup=6 * 3600.0)


def is_risk(a: Alert) -> bool:
    return a.rule == "anomaly" and bool(a.explanation) and a.explanation.get("kind") == "risk"


@pytest.fixture(scope="module")
def insider(tiny_model: Path) -> list[Alert]:
    return detect(stage_for(tiny_model), insider_docs())


def test_rule_alerts_and_small_anomalies_add_up_to_a_risk_alert(insider: list[Alert]) -> None:
    risk = [a for a in insider if is_risk(a)]
    # the insider only: accounts whose one rule fires all day long count it once a day
    assert [a.user_id for a in risk] == ["u004"]
    (a,) = risk
    expl = a.explanation
    assert isinstance(expl, dict)
    assert expl["risk"] >= expl["threshold"] > 0
    # every contribution is traceable: rule alerts by id, behaviours by event id
    rule_ids = {x.alert_id for x in insider if x.rule != "anomaly"}
    assert expl["rule_alerts"]
    assert set(expl["rule_alerts"]) <= rule_ids
    events = {d["event"]["id"] for d in insider_docs()}
    for c in expl["contributions"]:
        assert c["event_ids"]  # rule alerts: the events that completed them
        if c["kind"] == "rule":
            assert c["alert_ids"]
        assert set(c.get("event_ids", ())) <= events
        assert c["text"].startswith(c["day"])
    assert set(a.event_ids) <= events
    assert "accumulated to" in a.summary
    assert expl["text"] in a.summary


def test_live_equals_replay_with_risk(tiny_model: Path, insider: list[Alert]) -> None:
    """The daemon's way (rules judged on arrival, stages drained every few events) raises the
    same alerts, risk alerts included, as replay."""
    live = detect(stage_for(tiny_model), insider_docs(), early=True, tick_every=37)
    assert sorted(a.alert_id for a in live) == sorted(a.alert_id for a in insider)
    assert {a.alert_id: a.score for a in live if is_risk(a)} == {
        a.alert_id: a.score for a in insider if is_risk(a)}


@pytest.mark.parametrize("batch", [1, 500, 3331])
def test_holding_a_batch_for_the_stage_changes_no_alert(
        tiny_model: Path, insider: list[Alert], batch: int) -> None:
    """The daemon hands the stage a consumed batch's releases at once, after the rules have
    seen them and their alerts reached the risk ledger: the same alerts, scores included."""
    held = detect(stage_for(tiny_model), insider_docs(), early=True, tick_every=37,
                  batch=batch)
    assert len(held) == len(insider)
    assert sorted((a.alert_id, a.score) for a in held) == sorted(
        (a.alert_id, a.score) for a in insider)
    assert any(is_risk(a) for a in held)


@pytest.mark.parametrize("cut", [2510, 2520])
def test_an_idle_pause_does_not_end_the_stages_windows(
        tiny_model: Path, insider: list[Alert], cut: int) -> None:
    """Every partition quiet (the daemon flushes the reorder buffer) is not the end of the
    input: the stage raises what event time made due, and the alerts, scores included, are
    replay's. (Flushing the stage there scored the open hour without the events still to come
    and advanced the risk ledger to the end of time: a pause four hours before the insider's
    night changed the window alert's score; one a little later, which alerts were raised.)"""
    docs = insider_docs()
    assert docs[cut - 1]["@timestamp"] < docs[cut]["@timestamp"]  # a pause between two times
    stage = stage_for(tiny_model)
    det = Detector(stage.engine, Reorderer(lateness=120.0), [stage], early=True)
    det.order.expect({0})
    live: list[Alert] = []
    for n, doc in enumerate(docs):
        if n == cut:
            live += det.idle(0)  # caught up and quiet: the buffer is released
            live += det.flush_present()
        ev = decode(doc)
        live += det.push(ev, ev.timestamp.timestamp(), 0).alerts
    live += det.flush()
    assert sorted(a.alert_id for a in live) == sorted(a.alert_id for a in insider)
    assert {a.alert_id: a.score for a in live if a.rule == "anomaly"} == {
        a.alert_id: a.score for a in insider if a.rule == "anomaly"}


def test_a_leaver_weighs_more(tiny_model: Path, insider: list[Alert]) -> None:
    stage = stage_for(tiny_model)
    stage.engine.apply_directory(msgspec.convert({
        "user_id": "u004", "status": "active", "effective": "2026-11-01T00:00:00Z",
        "roles": ["billing"], "department": "billing",
        "notice_at": "2026-11-02T00:00:00Z"}, DirectoryRecord))
    alerts = [a for a in detect(stage, insider_docs()) if is_risk(a)]
    before = next(a for a in insider if is_risk(a))
    (a,) = alerts
    assert a.explanation
    assert a.explanation["leaver"]
    assert a.severity == "high"
    assert "notice period" in a.summary
    assert a.ts <= before.ts
    assert all(c["leaver"] for c in a.explanation["contributions"])
    # the same contributions count the calibrated leaver factor times (the leaver's alert
    # may come before the behaviour adds to it: compare what both have; rule points decay a
    # little between the two alerts)
    factor = stage.risk.ledger.config.leaver_factor
    assert 1.0 <= factor <= 4.0
    assert a.explanation["contributions"][0]["text"].endswith(f"(leaver x{factor:g})")
    first = {(c["day"], c["kind"], tuple(c["what"])): c["points"]
             for c in a.explanation["contributions"]}
    assert before.explanation
    then = {(c["day"], c["kind"], tuple(c["what"])): c["points"]
            for c in before.explanation["contributions"]}
    common = sorted(set(first) & set(then))
    assert common
    assert [first[d] for d in common] == pytest.approx([factor * then[d] for d in common],
                                                       rel=0.02)


def test_a_false_positive_label_damps_the_repeat_and_expires(
        tiny_model: Path, insider: list[Alert]) -> None:
    window = next(a for a in insider if a.rule == "anomaly" and a.user_id == "u004"
                  and not is_risk(a))
    assert window.explanation
    drivers = tuple(d["feature"] for d in window.explanation["drivers"])
    stage = stage_for(tiny_model)
    account = stage.engine.pseudonymize("u004")

    def labelled(days: float) -> list[Alert]:
        s = stage_for(tiny_model)
        # an earlier alert on the same pattern, labelled a false positive
        s.risk.set_labels(Labels([Label("anomaly:earlier", "false_positive", "anomaly",
                                        account, drivers, T0 + 3600, days, "")]))
        return [a for a in detect(s, insider_docs()) if a.rule == "anomaly"
                and a.user_id == "u004" and not is_risk(a)]

    assert labelled(14.0) == []  # damped
    assert [a.alert_id for a in labelled(1.0)] == [window.alert_id]  # expired


def test_an_escalated_risk_alert_says_how_far_beyond_the_last(tiny_model: Path) -> None:
    """A re-alert within the cool-down (the risk doubled) names the alert it goes beyond."""
    stage = stage_for(tiny_model)
    t = T0 + 2 * 86400 + 17 * 3600
    c = Contribution(int(t // 86400), "day", ("subject_reads_day",), 4.0, t, t, 1, ("e1",),
                     True, (), "40 events naming a customer that day by then")
    a = stage.risk._alert(RiskAlert("u004", t, 7.5, 6.4, (c,), True, (t - 26 * 3600, 3.2)))
    assert "2.3x the risk of this account's alert of " in a.summary
    assert "(3.20) 26 h before" in a.summary
    assert a.explanation
    assert a.explanation["escalated_from"] == {"at": rfc3339(t - 26 * 3600), "risk": 3.2}
    plain = stage.risk._alert(RiskAlert("u004", t, 3.5, 3.2, (c,), True))
    assert plain.explanation
    assert "escalated_from" not in plain.explanation
