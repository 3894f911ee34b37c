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
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_archive.py"), "--events", "3000",
         "--writer-reps", "1", "--skip-daemon", "--skip-month"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parts = re.findall(r"us an event \(min / median\)\s+([\d.]+) / ([\d.]+)", proc.stdout)
    assert len(parts) == 2, proc.stdout
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
