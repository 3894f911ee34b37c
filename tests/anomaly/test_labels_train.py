"""``watchdog train --labels``: false positives learnt as normal, true positives left out;
the risk's calibration written into the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer
from watchdog.anomaly.labels import Label, Labels
from watchdog.anomaly.labels_file import append_label
from watchdog.anomaly.retrain import alerts_to_leave_out, select_training_rows
from watchdog.anomaly.store import load
from watchdog.anomaly.train import train
from watchdog.cli import main

D = 86400.0
PSEUDO = Pseudonymizer(DEMO_KEY)


def lab(alert_id: str, verdict: str, user: str = "u1", t: float = 0.0) -> Label:
    return Label(alert_id, verdict, "bulk_export", PSEUDO(user), ("rule:bulk_export",), t,
                 14.0, "")


def test_false_positives_let_their_windows_back_in_true_positives_take_theirs_out() -> None:
    found = {"u1": [(10 * D, "bulk_export:a"), (20 * D, "bulk_export:b")]}
    labels = Labels([lab("bulk_export:a", "false_positive"),
                     lab("anomaly:x", "true_positive", "u2", 15 * D)])
    out, let_in, added = alerts_to_leave_out(found, labels, PSEUDO, ["u1", "u2", "u3"])
    assert out == {"u1": [20 * D], "u2": [15 * D]}
    assert (let_in, added) == (1, 1)
    users = ["u1", "u1", "u2", "u3"]
    times = np.array([10 * D - 3600, 20 * D - 3600, 15 * D - 3600, 15 * D - 3600])
    assert select_training_rows(users, times, out, now=None).tolist() == [
        True, False, False, True]


def _rule_alerts(tiny_inputs: dict[str, Path], tmp_path: Path) -> list[dict]:
    out = tmp_path / "alerts.jsonl"
    assert main(["replay", "--events", str(tiny_inputs["events"]), "--directory",
                 str(tiny_inputs["directory"]), "--out", str(out)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_train_reads_labels(tiny_inputs: dict[str, Path], tiny_model: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PSEUDONYM_KEY", raising=False)  # the demo key, as train's
    alerts = _rule_alerts(tiny_inputs, tmp_path)
    assert alerts
    labels = tmp_path / "labels.jsonl"
    noisy = alerts[0]["user_id"]
    fps = [a for a in alerts if a["user_id"] == noisy]
    for a in fps:  # an analyst: "this account's alerts are all false"
        append_label(labels, Label(a["alert_id"], "false_positive", a["rule"], PSEUDO(noisy),
                                   (f"rule:{a['rule']}",), 0.0, 14.0, ""))
    quiet = next(f"u{i:03d}" for i in range(30) if f"u{i:03d}" not in
                 {a["user_id"] for a in alerts})
    append_label(labels, Label("anomaly:confirmed", "true_positive", "anomaly", PSEUDO(quiet),
                               ("exports_24h",), 1_793_577_600.0 + 2.5 * D, 14.0, ""))
    _, doc = train(str(tiny_inputs["events"]), str(tmp_path / "model"),
                   directory=str(tiny_inputs["directory"]), trees=20, warmup=6 * 3600.0,
                   target=5.0, labels=str(labels))
    before = load(tiny_model).info["training"]
    assert doc["training"]["labels"] == {"false_positives_learnt": len(fps),
                                         "true_positives_left_out": 1}
    # the false positives' windows learnt: more rows than without labels (the true
    # positive's day takes fewer out than the noisy account's days give back)
    assert (doc["training"]["train_rows"] + doc["training"]["heldout_rows"]
            > before["train_rows"] + before["heldout_rows"])
    assert doc["training"]["rows_left_out_near_rule_alerts"] < before[
        "rows_left_out_near_rule_alerts"]
    # and the person-level risk is calibrated into the model
    risk = doc["risk"]
    assert risk["threshold"] >= 2.5
    assert 0 < risk["floor"] < doc["threshold"]
    assert risk["calibration"]["simulated_false_alerts_per_1000_account_days"] <= 5.0


def test_train_refuses_a_bad_labels_file(tiny_inputs: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "labels.jsonl"
    bad.write_text("not a trail\n")
    for labels in (bad, tmp_path / "missing.jsonl"):
        rc = main(["train", "--events", str(tiny_inputs["events"]), "--out",
                   str(tmp_path / "m"), "--labels", str(labels)])
        assert rc == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert err[0].startswith(f"watchdog: error: labels {labels}")
    assert not (tmp_path / "m").exists()
