"""``bench/bench_anomaly.py`` end to end at a tiny size: a world with drawn cases, the shipped
model trained with ``watchdog train``'s defaults, replayed, scored beside the baselines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.simulate.drawn import FAMILIES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_anomaly_runs_at_tiny_size(tmp_path: Path) -> None:
    out, png, md = tmp_path / "out.json", tmp_path / "envelope.png", tmp_path / "out.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_anomaly.py"), "--sizes", "100",
         "--seeds", "101", "--days", "20", "--train-days", "10", "--per-family", "2",
         "--work", str(tmp_path / "work"), "--json", str(out), "--png", str(png),
         "--md", str(md), "--throughput-rounds", "1", "--memory-accounts", "2000"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res["summary"]) == {"shipped", "robust_z", "hbos"}
    for det, s in res["summary"].items():
        assert [s["families"][f]["cases"] for f in FAMILIES] == [2] * len(FAMILIES), det
        assert s["false_per_1000_account_days"] >= 0
        assert s["account_days"] > 1000
        assert {"burst>=5x,>=1h", "sustained 2-3x,>=5d",
                "false/1000 account-days"} == set(s["targets"])
    (world,) = res["worlds"]
    assert world["rule_alerts"] == {}  # the cases break no rule: only the model can see them
    assert len(res["cases"]) == 3 * 2 * len(FAMILIES)
    assert res["throughput"]["rules_only_events_per_cpu_s"] > 0
    assert res["throughput"]["with_model_events_per_cpu_s"] > 0
    assert res["memory"]["bytes_per_account"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = md.read_text()
    assert "| burst | shipped | 2 |" in text
    assert ("PASS" in text) or ("FAIL" in text)


@pytest.mark.slow
def test_cost_only_measures_the_cost_alone(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_anomaly.py"), "--cost-only", "--sizes",
         "100", "--seeds", "101", "--days", "16", "--train-days", "10", "--per-family", "1",
         "--work", str(tmp_path / "work"), "--json", str(out), "--throughput-rounds", "2",
         "--memory-accounts", "2000"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert "summary" not in res  # no detection run
    assert len(res["throughput"]["per_round_share"]) == 2
    assert res["throughput"]["with_model_events_per_cpu_s"] > 0
    assert res["memory"]["accounts"] == 2000
    assert "% of rules only (rounds " in proc.stdout
