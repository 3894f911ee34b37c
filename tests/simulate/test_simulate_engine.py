"""The detection engine, run over a simulated world, raises exactly the ground truth:
nothing on clean traffic, and for each injected scenario exactly the alerts it lists."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from watchdog.simulate import SimConfig, build_world, write_world

pytestmark = pytest.mark.skipif(importlib.util.find_spec("watchdog.replay") is None,
                                reason="the replay engine is not in this build")


def _replay(out: Path) -> list[dict[str, object]]:
    alerts = out / "alerts.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "watchdog", "replay", "--events", str(out / "events.jsonl"),
         "--directory", str(out / "directory.jsonl"), "--subjects", str(out / "subjects.jsonl"),
         "--policy", str(out / "policy.yaml"), "--out", str(alerts)],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in alerts.read_bytes().splitlines()]


def _compare(out: Path) -> None:
    truth = [orjson.loads(line) for line in (out / "truth.jsonl").read_bytes().splitlines()]
    alerts = _replay(out)
    expected = {(t["event_id"], t["rule"], t["user_id"]) for t in truth}
    got = {(a["event_ids"][-1], a["rule"], a["user_id"]) for a in alerts  # type: ignore[index]
           if a["rule"] != "anomaly"}
    by_event = {t["event_id"]: t["scenario"] for t in truth}
    missing = sorted((x, by_event.get(x[0])) for x in expected - got)
    extra = sorted(str(a["summary"]) for a in alerts
                   if (a["event_ids"][-1], a["rule"], a["user_id"]) in got - expected)  # type: ignore[index]
    assert not missing, missing
    assert not extra, extra[:20]


def test_engine_alerts_equal_truth(small_dir: Path) -> None:
    _compare(small_dir)


@pytest.mark.slow
def test_engine_alerts_equal_truth_other_seed(tmp_path: Path) -> None:
    write_world(build_world(SimConfig(accounts=300, days=8, seed=23, violations_per_rule=3)),
                tmp_path)
    _compare(tmp_path)
