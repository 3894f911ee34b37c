"""The anomaly service alone (``watchdog run --only anomaly``) with an MQTT source, with real
processes: mosquitto, ``watchdog run`` with the tiny model and ``model_state:``, Kafka (Tansu)
carrying the directory only; the harness of :mod:`tests.fuzz.test_live_mqtt_anomaly_state`
(:func:`deliver`, :func:`lost_between`) and its cuts.

**The reference.** The anomaly service runs no rule, so its stage weighs no rule alert in the
risk (docs/risk-and-labels.md: "the risk then adds windows and the leaver period only"): its
alerts are those of replay's detector with the stages alone (``rules=False``,
:func:`~tests.fuzz._anomaly_stream.expected_alerts`), not replay's anomaly alerts. Checked here,
not assumed: the window alerts are replay's, exactly; only risk alerts differ (measured: u010's
and u004's risk alerts of replay missing, u010's raised the next day at the day scale's close
instead).

- **alone**: the alerts are exactly the stages' alone, before the cut, and the sink holds no
  rule alert at all (replay raises 1,049 over the same events); every start says
  ``only: anomaly``; no rules' checkpoint file; the whole-stream reader's gauge not exported.
- **SIGTERM** in u010's second night of copies (its risk alert raised, its cool-down running,
  a scoring window open; a model started afresh there gives other alerts): the restart
  restores the model's state; the alerts are exactly the stages' alone. Without a checkpoint
  the events missed are unknown: ``events_missed`` null, even after a clean stop
  (docs/configuration.md).
- **kill -9**: the state saved at a SIGTERM before u010's first night, that night read,
  processed and acknowledged (no checkpoint: acknowledged once handled; no periodic save), then
  kill -9. The restart restores the save (the same bytes as the restart before), says the
  events missed are unknown (null), and what follows is exactly the same components in this
  process (:func:`lost_between`, ``rules=False``: the detector afresh, the stage from the save
  before the night); that differs from the uninterrupted run (the night is lost) and from a
  model started afresh at the kill (the save was restored).

Measured with ``model_state: null`` (the daemon otherwise the same): the SIGTERM's alerts differ
from the stages' alone in 8 (windows scored as if u010 were new, a risk alert more), the kill's
from the expected in window scores and u010's risk alert; without ``--only anomaly`` the sink
holds 1,051 alerts more (the rules', and replay's two risk alerts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fuzz._anomaly_stream import (
    KILLED,
    SAVED,
    TERM_AT,
    Alerts,
    assert_replays,
    expected_alerts,
    explain,
    kind,
)
from tests.fuzz.test_live_mqtt_anomaly_state import (
    _parses,
    deliver,
    lost_between,
)
from tests.services.mosquitto import Mosquitto

pytestmark = pytest.mark.integration

ONLY = ("--only", "anomaly")


@pytest.fixture(scope="module")
def alone(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Alerts:
    """The stages' alerts alone before the cut (checked against a drained pipeline)."""
    return expected_alerts(tiny_model, tmp_path_factory.mktemp("alone"), rules=False)


def _log(tmp: Path) -> list[dict[str, Any]]:
    """The daemon's JSON log lines, every start's (:func:`deliver` writes it there)."""
    return [orjson.loads(line) for line in (tmp / "watchdog.log").read_text().splitlines()
            if line.startswith("{")]


def _rules_off(tmp: Path, starts: int, restarts: list[dict[str, Any]]) -> None:
    """Every start ran the anomaly service alone: the sink's alerts (all, not only before the
    cut) are the model's, no rules' checkpoint was written (``mqtt.checkpoint.path`` is
    configured), and the whole-stream reader's gauge is not exported."""
    lines = (tmp / "alerts.jsonl").read_bytes().splitlines()
    rules = {orjson.loads(line)["rule"] for line in lines if _parses(line)}
    assert rules == {"anomaly"}, rules
    assert not (tmp / "mqtt.checkpoint").exists()
    started = [d.get("only") for d in _log(tmp) if d.get("event") == "started"]
    assert started == ["anomaly"] * starts, started
    assert [r["reader"] for r in restarts] == [None] * len(restarts), restarts


def test_the_reference_is_replays_windows_and_the_risk_without_rule_alerts(
        reference: Alerts, alone: Alerts) -> None:
    """(In this process.) Why the daemon is compared with the stages alone, not replay."""
    model = frozenset(a for a in reference if kind(a) != "rule")
    assert {a for a in alone if kind(a) == "window"} == {
        a for a in model if kind(a) == "window"}, explain(sorted(model - alone),
                                                           sorted(alone - model))
    assert [kind(a) for a in alone].count("risk") >= 1
    assert alone != model  # (the risk weighs no rule alert: if it did, compare with replay)
    assert [kind(a) for a in reference].count("rule") >= 1000  # the rules have much to say


async def test_the_anomaly_service_raises_the_models_alerts_and_no_rules(
        brokers: tuple[str, Mosquitto], tiny_model: Path, alone: Alerts,
        tmp_path: Path) -> None:
    live, restarts = await deliver(*brokers, tmp_path, tiny_model, [], ONLY)
    assert_replays(alone, live)
    assert restarts == []
    _rules_off(tmp_path, 1, restarts)


async def test_a_sigterm_mid_stream_keeps_what_the_model_learnt(
        brokers: tuple[str, Mosquitto], tiny_model: Path, alone: Alerts,
        tmp_path: Path) -> None:
    # the point matters: a model started afresh there raises other alerts
    assert lost_between(tiny_model, TERM_AT, TERM_AT, afresh=True, rules=False) != set(alone)
    live, restarts = await deliver(*brokers, tmp_path, tiny_model, [(TERM_AT, "term")], ONLY)
    assert_replays(alone, live)
    [r] = restarts
    assert r["restored"] == 1, r
    assert r["line"] is not None
    assert r["line"]["events_missed"] is None  # (no checkpoint: unknown, even after a SIGTERM)
    _rules_off(tmp_path, 2, restarts)


async def test_a_kill_costs_the_model_only_what_it_learnt_since_its_save(
        brokers: tuple[str, Mosquitto], tiny_model: Path, alone: Alerts,
        tmp_path: Path) -> None:
    expected = lost_between(tiny_model, SAVED, KILLED, rules=False)
    live, restarts = await deliver(*brokers, tmp_path, tiny_model,
                                   [(SAVED, "term"), (KILLED, "kill")], ONLY)
    assert live == expected, explain(sorted(expected - live), sorted(live - expected))
    assert [(r["after"], r["restored"]) for r in restarts] == [("term", 1), ("kill", 1)], restarts
    term, kill = (r["line"] for r in restarts)
    assert term is not None
    assert kill is not None
    assert (term["events_missed"], kill["events_missed"]) == (None, None)
    # the kill's restart restored the save the SIGTERM wrote (no save since: deliver checks)
    assert kill["bytes"] == term["bytes"]
    # the loss is real (the night unlearnt), and the state was restored (afresh differs)
    assert expected != set(alone)
    assert expected != lost_between(tiny_model, SAVED, KILLED, afresh=True, rules=False)
    _rules_off(tmp_path, 3, restarts)
