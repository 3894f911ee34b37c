"""``watchdog train`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.anomaly.conftest import baseline, write_jsonl
from watchdog.cli import main


def test_train_writes_a_model_directory(tiny_inputs: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m"
    rc = main(["train", "--events", str(tiny_inputs["events"]), "--directory",
               str(tiny_inputs["directory"]), "--out", str(out), "--target-false-rate", "5",
               "--seed", "3", "--trees", "10", "--warmup-hours", "6"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["training"]["seed"] == 3
    assert doc["params"]["n_estimators"] == 10
    assert doc["calibration"]["target_false_alerts_per_1000_accounts_per_day"] == 5.0
    err = capsys.readouterr().err
    assert "watchdog train" in err
    assert doc["model_version"] in err


def test_train_refuses_what_it_cannot_use(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--events", str(tmp_path / "missing.jsonl"), "--out",
                 str(tmp_path / "m")]) == 2
    assert "no such file" in capsys.readouterr().err
    short = write_jsonl(tmp_path / "short.jsonl", baseline(n_accounts=5, days=1))
    assert main(["train", "--events", str(short), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("watchdog: error: too little baseline")
    assert not (tmp_path / "m").exists()
    assert main(["train", "--events", str(short), "--out", str(tmp_path / "m"),
                 "--target-false-rate", "0"]) == 2
