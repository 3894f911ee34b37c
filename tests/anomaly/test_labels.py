"""Analysts' labels: the format, the damping, the labels file and ``watchdog label``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer
from watchdog.anomaly.labels import DAY, Label, Labels, behaviours_of
from watchdog.anomaly.labels_file import append_label, find_alert, read_labels
from watchdog.audit import AuditTrail, verify
from watchdog.cli import main

T = 1_793_613_600.0  # 2026-11-02 10:00 UTC

WINDOW_ALERT = {
    "alert_id": "anomaly:0011223344556677", "rule": "anomaly", "severity": "medium",
    "ts": "2026-11-02T10:00:00.000Z", "user_id": "alice.example", "event_ids": ["e1", "e2"],
    "summary": "Unusual behaviour by account alice.example", "subjects": {"count": 3},
    "explanation": {"drivers": [{"feature": "exports_24h"}, {"feature": "subjects_1h"}]},
}
RISK_ALERT = {
    "alert_id": "anomaly:8899aabbccddeeff", "rule": "anomaly", "severity": "high",
    "ts": "2026-11-03T16:00:00.000Z", "user_id": "bob.example", "event_ids": ["e9"],
    "summary": "Risk of account bob.example accumulated",
    "explanation": {"kind": "risk", "contributions": [
        {"kind": "behaviour", "what": ["subjects_24h"]},
        {"kind": "rule", "what": ["bulk_export"], "alert_ids": ["bulk_export:1"]}]},
}
RULE_ALERT = {"alert_id": "bulk_export:0123", "rule": "bulk_export", "severity": "high",
              "ts": "2026-11-02T09:00:00.000Z", "user_id": "carol.example",
              "event_ids": ["e5"], "summary": "Bulk export"}


def fp(account: str = "s-acc", behaviours: tuple[str, ...] = ("exports_24h", "subjects_1h"),
       days: float = 14.0, alert_id: str = "anomaly:1", verdict: str = "false_positive",
       ) -> Label:
    return Label(alert_id, verdict, "anomaly", account, behaviours, T, days,
                 "2026-11-02T12:00:00.000Z", "a monthly report")


def test_a_false_positive_damps_its_pattern_then_expires() -> None:
    labels = Labels([fp(days=14)])
    assert labels.damped("s-acc", ["exports_24h"], T + 3600)
    assert labels.damped("s-acc", ["exports_24h", "subjects_1h"], T + 13 * DAY)
    assert not labels.damped("s-acc", ["exports_24h"], T + 14 * DAY + 1)  # expired
    assert not labels.damped("s-acc", ["exports_24h"], T)  # not the labelled alert itself
    assert not labels.damped("s-acc", ["exports_24h", "external_1h"], T + 3600)  # more
    assert not labels.damped("s-other", ["exports_24h"], T + 3600)  # another account
    assert not labels.damped("s-acc", [], T + 3600)


def test_the_later_label_of_an_alert_wins() -> None:
    labels = Labels([fp(), fp(verdict="true_positive")])
    assert not labels.damped("s-acc", ["exports_24h"], T + 3600)
    assert labels.ids("true_positive") == {"anomaly:1"}
    assert labels.ids("false_positive") == set()


def test_behaviours_of_each_kind_of_alert() -> None:
    assert behaviours_of(WINDOW_ALERT) == ("exports_24h", "subjects_1h")
    assert behaviours_of(RISK_ALERT) == ("subjects_24h", "rule:bulk_export")
    assert behaviours_of(RULE_ALERT) == ("rule:bulk_export",)


def test_entry_round_trip_and_bad_entries() -> None:
    lab = fp()
    assert Label.from_entry(lab.to_entry()) == lab
    for bad, why in (({"label": "maybe"}, "not one of"), ({}, "without label"),
                     ({**lab.to_entry(), "damp_days": -1}, "damp_days"),
                     ({**lab.to_entry(), "alert_time": "yesterday"}, "yesterday")):
        with pytest.raises(ValueError, match=why) as err:
            Label.from_entry(bad)
        assert "\n" not in str(err.value)


def test_labels_file_is_a_verifiable_audit_trail(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    assert len(read_labels(path, missing_ok=True)) == 0
    with pytest.raises(ValueError, match="no such file"):
        read_labels(path)
    assert append_label(path, fp()) == 1
    assert append_label(path, fp(alert_id="anomaly:2", days=3)) == 2
    got = read_labels(path)
    assert got.by_alert["anomaly:2"].damp_days == 3
    assert verify(path).ok
    # an edited label is refused, with one line
    text = path.read_text().replace('"damp_days":3,', '"damp_days":300,')
    assert text != path.read_text()
    path.write_text(text)
    with pytest.raises(ValueError, match=r"labels .*") as err:
        read_labels(path)
    assert "\n" not in str(err.value)


def test_an_audit_trail_of_alerts_is_not_a_labels_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditTrail(path) as trail:
        trail.append(json.dumps(RULE_ALERT).encode())
    with pytest.raises(ValueError, match="line 1: not a label"):
        read_labels(path)
    assert find_alert("bulk_export:0123", [path]) == RULE_ALERT


# -- watchdog label --------------------------------------------------------------------------
@pytest.fixture
def alerts_file(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in (RULE_ALERT, WINDOW_ALERT,
                                                           RISK_ALERT)))
    return path


def label(*args: str) -> int:
    return main(["label", *args])


def test_label_false_positive(tmp_path: Path, alerts_file: Path,
                              capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_PSEUDONYM_KEY", "label-test-key-0123456789")
    labels = tmp_path / "labels.jsonl"
    rc = label("anomaly:0011223344556677", "false_positive", "--note", "quarter-end report",
               "--days", "7", "--labels", str(labels), "--alerts", str(alerts_file))
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "damped until 2026-11-09 10:00 UTC" in out
    raw = labels.read_text()
    assert "alice" not in raw
    assert "alice" not in out
    lab = read_labels(labels).by_alert["anomaly:0011223344556677"]
    assert lab.account == Pseudonymizer(b"label-test-key-0123456789")("alice.example")
    assert lab.behaviours == ("exports_24h", "subjects_1h")
    assert lab.damp_days == 7
    assert lab.note == "quarter-end report"
    assert main(["verify-audit", str(labels)]) == 0
    # then a true positive on the risk alert, in the same trail
    assert label("anomaly:8899aabbccddeeff", "true_positive", "--labels", str(labels),
                 "--alerts", str(alerts_file)) == 0
    assert read_labels(labels).ids("true_positive") == {"anomaly:8899aabbccddeeff"}


def test_label_reads_its_files_from_the_configuration(
        tmp_path: Path, alerts_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PSEUDONYM_KEY", raising=False)
    cfg = tmp_path / "watchdog.yaml"
    labels = tmp_path / "labels.jsonl"
    cfg.write_text(f"labels: {labels}\npseudonym_key: config-key-0123456789abc\n"
                   f"sinks:\n  jsonl:\n    path: {alerts_file}\n")
    assert label("bulk_export:0123", "false_positive", "--config", str(cfg)) == 0
    lab = read_labels(labels).by_alert["bulk_export:0123"]
    assert lab.account == Pseudonymizer(b"config-key-0123456789abc")("carol.example")
    assert lab.behaviours == ("rule:bulk_export",)


@pytest.mark.parametrize(("args", "error"), [
    (["anomaly:0011223344556677", "maybe"], "give false_positive or true_positive"),
    (["anomaly:ffff", "false_positive"], "not found in"),
    (["anomaly:0011223344556677", "false_positive", "--days", "-2"], "--days"),
    (["anomaly:0011223344556677", "false_positive", "--note", "x" * 501], "--note"),
])
def test_label_refuses_with_one_line(args: list[str], error: str, tmp_path: Path,
                                     alerts_file: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.jsonl"
    assert label(*args, "--labels", str(labels), "--alerts", str(alerts_file)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("watchdog: error: "), err
    assert error in err[-1], err
    assert not labels.exists()


def test_label_refuses_a_broken_labels_file_or_missing_inputs(
        tmp_path: Path, alerts_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "labels.jsonl"
    broken.write_text('{"not": "a trail"}\n')
    before = broken.read_bytes()
    assert label("bulk_export:0123", "false_positive", "--labels", str(broken),
                 "--alerts", str(alerts_file)) == 2
    assert broken.read_bytes() == before
    assert label("bulk_export:0123", "false_positive", "--alerts", str(alerts_file)) == 2
    assert label("bulk_export:0123", "false_positive", "--labels", str(broken),
                 "--alerts", str(tmp_path / "none.jsonl")) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("watchdog: error:")] == lines[-3:]
    assert "no labels file" in lines[-2]
    assert "no such file" in lines[-1]


def test_demo_key_is_the_default_pseudonym_key(tmp_path: Path, alerts_file: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WATCHDOG_PSEUDONYM_KEY", raising=False)
    labels = tmp_path / "labels.jsonl"
    assert label("bulk_export:0123", "true_positive", "--labels", str(labels),
                 "--alerts", str(alerts_file)) == 0
    assert "demo key" in capsys.readouterr().err
    assert read_labels(labels).by_alert["bulk_export:0123"].account == Pseudonymizer(
        DEMO_KEY)("carol.example")


def test_label_is_recorded_in_the_daemons_audit_trail_while_it_runs(
        tmp_path: Path, alerts_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WATCHDOG_AUDIT_KEY", raising=False)
    audit, labels = tmp_path / "audit.jsonl", tmp_path / "labels.jsonl"
    key = b"audit-key-0123456789abcdef"
    with AuditTrail(audit, key=key) as daemon:  # the daemon's sink owns the trail
        daemon.append(json.dumps(WINDOW_ALERT).encode())
        # a keyed trail without its key: refused, and the label not taken either
        assert label("anomaly:0011223344556677", "false_positive", "--labels", str(labels),
                     "--alerts", str(audit), "--audit", str(audit)) == 2
        assert "key" in capsys.readouterr().err
        assert not labels.exists()
        monkeypatch.setenv("WATCHDOG_AUDIT_KEY", key.decode())
        assert label("anomaly:0011223344556677", "false_positive", "--labels", str(labels),
                     "--alerts", str(audit), "--audit", str(audit)) == 0
        daemon.append(json.dumps(RULE_ALERT).encode())  # and the daemon goes on
    assert verify(audit, key=key).ok
    entries = [json.loads(line)["alert"] for line in audit.read_text().splitlines()]
    assert [e.get("kind") for e in entries] == [None, "label", None]
    assert entries[1] == read_labels(labels).by_alert["anomaly:0011223344556677"].to_entry()
    assert "alice" not in json.dumps(entries[1])
