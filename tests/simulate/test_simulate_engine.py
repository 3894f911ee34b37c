"""The detection engine, run over a simulated world, raises exactly the ground truth:
nothing on clean traffic, and for each injected scenario exactly the alerts it lists."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from watchdog.simulate import SimConfig, build_world, write_world
from watchdog.simulate.scoring import score, silent_hits, table

pytestmark = pytest.mark.skipif(importlib.util.find_spec("watchdog.replay") is None,
                                reason="the replay engine is not in this build")


def _replay(out: Path) -> list[dict[str, Any]]:
    alerts = out / "alerts.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "watchdog", "replay", "--events", str(out / "events.jsonl"),
         "--directory", str(out / "directory.jsonl"), "--subjects", str(out / "subjects.jsonl"),
         "--accounts", str(out / "accounts.jsonl"), "--policy", str(out / "policy.yaml"),
         "--out", str(alerts)],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in alerts.read_bytes().splitlines()]


def _compare(out: Path) -> None:
    """Every expected alert and nothing else: no near miss fires, no rule the policy leaves
    off raises anything."""
    truth = [orjson.loads(line) for line in (out / "truth.jsonl").read_bytes().splitlines()]
    alerts = [a for a in _replay(out) if a["rule"] != "anomaly"]
    scores = score(truth, alerts)
    wrong = {r: {"missed": s.missed[:5], "unexpected": s.unexpected[:5]}
             for r, s in scores.items() if s.missed or s.unexpected}
    assert not wrong, f"{wrong}\n{table(scores)}"
    assert silent_hits(truth, alerts) == []


def test_engine_alerts_equal_truth(small_dir: Path) -> None:
    _compare(small_dir)


@pytest.mark.slow
def test_engine_alerts_equal_truth_other_seed(tmp_path: Path) -> None:
    write_world(build_world(SimConfig(accounts=300, days=8, seed=23, violations_per_rule=3)),
                tmp_path)
    _compare(tmp_path)
