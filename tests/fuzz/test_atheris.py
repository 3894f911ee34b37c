"""Runs the coverage-guided harness ``atheris_decode.py`` for a small number of inputs.

Skipped when atheris is not installed (it is not a dependency of the project: ``pip install
atheris`` into the venv; wheels exist for CPython 3.11 on x86-64 Linux). The number of inputs
is this target's share of ``WATCHDOG_FUZZ_EXAMPLES`` (``make fuzz``), else a CI-sized one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz._support import budget

HARNESS = Path(__file__).with_name("atheris_decode.py")


def test_atheris_harness(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    runs = budget("atheris", 20_000)
    crashes = tmp_path / "crashes"
    crashes.mkdir()
    proc = subprocess.run(
        [sys.executable, str(HARNESS), f"-atheris_runs={runs}", "-timeout=30",
         f"-artifact_prefix={crashes}/", "-print_final_stats=1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=3600, check=False)
    tail = "\n".join(proc.stderr.splitlines()[-60:])
    assert proc.returncode == 0, f"the harness found a crash:\n{tail}"
    assert not list(crashes.iterdir()), tail
    done = re.search(r"Done (\d+) in (\d+) second", proc.stderr)
    assert done is not None, tail
    assert int(done.group(1)) >= runs
    print(f"atheris: {done.group(1)} inputs in {done.group(2)} s")
