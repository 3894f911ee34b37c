"""``bench/bench_archive.py``'s sink-alone measure at a tiny size, and the daemon's CPU count
(every thread, and children) that its ratio rests on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_sink_alone_rows_report_both_parts_per_event() -> None:
    """The pipeline's part, and the writer's for format 3 (the default) and format 1."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_archive.py"), "--events", "3000",
         "--writer-reps", "1", "--skip-daemon", "--skip-month"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parts = re.findall(r"us an event \(min / median\)\s+([\d.]+) / ([\d.]+)", proc.stdout)
    assert len(parts) == 3, proc.stdout
    assert "writer's part, format 3" in proc.stdout
    assert "writer's part, format 1" in proc.stdout
    assert all(0 < float(a) <= float(b) for a, b in parts)


def test_the_cpu_count_includes_other_threads() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.bench_daemon import _cpu_seconds

    def spin() -> None:
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass

    before = _cpu_seconds(os.getpid())
    t = threading.Thread(target=spin)
    t.start()
    t.join()  # ended: its time stays in the process's
    assert _cpu_seconds(os.getpid()) - before >= 0.25


def test_the_round_table_compares_each_daemon_within_its_round() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.archive_cost.round_table import ab_rows, round_rows

    names = ["without", "with"]
    rows = dict(round_rows(
        2, names, {"without": [100.0, 50.0], "with": [80.0, 45.0]},
        {n: [(1.0, 0.5), (2.0, 0.5)] for n in names},
        {n: [(1.0, 0.0, 0.5, 0.5, 1.0)] * 2 for n in names},
        {n: [3.0, 5.0] for n in names}))
    assert rows["round 2: events per daemon CPU-second, without / with"] == "50 / 45"
    # against the same round's daemon without: -20% and -10%, not the other round's
    assert rows["with: median change within a round (lowest, highest)"] == (
        "-15.0% (-20.0%, -10.0%)")
    assert "without: median change within a round (lowest, highest)" not in rows
    assert rows["with: its rate as a share of without's, each round (sorted)"] == "80.0% 90.0%"
    # bench/bench_model_share.py: the first daemon is the base, whatever its name
    model = dict(round_rows(
        1, ["rules only", "model"], {"rules only": [40.0], "model": [31.0]},
        {n: [(1.0, 0.5)] for n in ("rules only", "model")},
        {n: [(1.0, 0.0, 0.5, 0.5, 1.0)] for n in ("rules only", "model")},
        {n: [3.0] for n in ("rules only", "model")}))
    assert model["model: median change within a round (lowest, highest)"] == (
        "-22.5% (-22.5%, -22.5%)")
    assert model["model: its rate as a share of rules only's, each round (sorted)"] == "77.5%"
    assert ab_rows({"archive on": [2.0, 1.0, 3.0]}) == [
        ("archive on", "median 2.00 (2.00, 1.00, 3.00)")]
