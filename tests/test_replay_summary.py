"""`watchdog replay` says what it judged with: the inputs in its summary, a warning on stderr
for a missing directory or the built-in policy, ``--json`` for scripts, ``--fail-on-alerts``
for CI; ``--out - | head`` ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_replay import DIRECTORY, GOOD_EVENTS, SUBJECTS, jsonl
from watchdog.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    paths = {"events": tmp_path / "events.jsonl", "directory": tmp_path / "directory.jsonl",
             "subjects": tmp_path / "subjects.jsonl"}
    paths["events"].write_bytes(jsonl(GOOD_EVENTS))
    paths["directory"].write_bytes(jsonl(DIRECTORY))
    paths["subjects"].write_bytes(jsonl(SUBJECTS))
    return paths


def test_without_directory_and_policy_warns_and_names_them(inputs, tmp_path, capsys):
    out = tmp_path / "a.jsonl"
    assert main(["replay", "--events", str(inputs["events"]), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("watchdog: warning:")]
    assert len(warnings) == 2
    assert "no --directory" in warnings[0]
    assert "built-in default policy" in warnings[1]
    assert "policy built-in default policy" in err
    assert "directory none" in err


def test_summary_names_every_input_and_no_warning_when_given(inputs, tmp_path, capsys):
    policy = ROOT / "watchdog" / "policies" / "default.yaml"
    argv = ["replay", "--events", str(inputs["events"]), "--directory", str(inputs["directory"]),
            "--subjects", str(inputs["subjects"]), "--policy", str(policy),
            "--out", str(tmp_path / "a.jsonl")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning" not in err
    assert f"directory {inputs['directory']}" in " ".join(err.split())
    assert str(policy) in " ".join(err.split())


def test_json_summary_and_fail_on_alerts(inputs, tmp_path, capsys):
    argv = ["replay", "--events", str(inputs["events"]), "--directory", str(inputs["directory"]),
            "--out", str(tmp_path / "a.jsonl"), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["inputs"]["directory"] == str(inputs["directory"])
    assert doc["inputs"]["subjects"] is None
    assert doc["inputs"]["policy"] == "built-in default policy"
    assert len(doc["warnings"]) == 1
    assert "built-in" in doc["warnings"][0]
    assert doc["events"] == len(GOOD_EVENTS)
    assert (doc["duplicates"], doc["conflicts"]) == (0, 0)
    assert doc["alerts_total"] == sum(a["count"] for a in doc["alerts"]) > 0
    assert main([*argv, "--fail-on-alerts"]) == 1
    inputs["events"].write_bytes(jsonl(GOOD_EVENTS[:1]))  # a clean access: no alert
    capsys.readouterr()
    assert main([*argv[:-1], "--subjects", str(inputs["subjects"]), "--fail-on-alerts"]) == 0


def test_json_with_alerts_on_stdout_is_refused(inputs, capsys):
    assert main(["replay", "--events", str(inputs["events"]), "--out", "-", "--json"]) == 2
    assert "--json" in capsys.readouterr().err


def test_out_to_a_closed_pipe_ends_quietly(inputs, tmp_path):
    many = tmp_path / "many.jsonl"
    docs = [dict(d, event=dict(d["event"], id=f"{d['event']['id']}-{i}"))
            for i in range(400) for d in GOOD_EVENTS]
    many.write_bytes(jsonl(docs))
    cmd = (f"{sys.executable} -m watchdog replay --events {many} "
           f"--directory {inputs['directory']} --out - | head -n 1")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.count("\n") == 1
    assert "Broken pipe" not in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
