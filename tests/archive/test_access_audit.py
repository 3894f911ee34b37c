"""Each ``subject-report`` and ``evidence`` run is recorded in the daemon's keyed audit trail,
while the daemon's audit sink holds it, and ``verify-audit`` checks those records."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import pytest

from tests.archive.helpers import write_archive
from tests.daemon.test_audit_sink import alert
from watchdog.audit import AuditTrail
from watchdog.cli import main
from watchdog.daemon.sinks.audit import AuditSink

KEY = "audit-key-0123456789abcdef"


@pytest.fixture(scope="module")
def archive(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("access") / "archive"
    assert write_archive(world_dir, out) == 0
    return out


def _subject(world: Path) -> str:
    for line in (world / "events.jsonl").read_text().splitlines():
        ids = json.loads(line).get("data", {}).get("subject_ids")
        if ids:
            return str(ids[0])
    raise AssertionError("no subject in the simulated world")


def _entries(trail: Path) -> list[dict[str, object]]:
    return [json.loads(x)["alert"] for x in trail.read_text().splitlines()]


async def test_runs_are_chained_into_the_running_daemons_keyed_trail(
        archive: Path, world_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    trail = tmp_path / "audit.jsonl"
    config = tmp_path / "watchdog.yaml"
    config.write_text(f"sinks: {{audit: {{path: {trail}, fsync: false}}}}\n")
    creds = tmp_path / "creds"  # the key as the daemon gets it: a credential
    creds.mkdir()
    (creds / "audit-key").write_text(KEY)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.delenv("WATCHDOG_AUDIT_KEY", raising=False)
    monkeypatch.delenv("WATCHDOG_AUDIT_TRAIL", raising=False)
    sink = AuditSink(trail, fsync=False, key=KEY.encode())  # the daemon's sink, running
    await sink.start()
    await sink.send([alert(0), alert(1)])
    subject = _subject(world_dir)
    alert_id = json.loads((world_dir / "alerts.jsonl").read_text().splitlines()[0])["alert_id"]
    rc = await asyncio.to_thread(main, ["subject-report", "--archive", str(archive),
                                        "--subject", subject, "--json", "--config",
                                        str(config)])
    assert rc == 0
    rc = await asyncio.to_thread(main, ["evidence", "--archive", str(archive), alert_id,
                                        "--out", str(tmp_path / "bundle"), "--config",
                                        str(config)])
    assert rc == 0
    await sink.send([alert(2)])  # the daemon chains on after the commands' entries
    await sink.close()
    entries = _entries(trail)
    assert [e.get("kind", "alert") for e in entries] == [
        "alert", "alert", "archive_access", "archive_access", "alert"]
    report, evidence = entries[2], entries[3]
    assert report["command"] == "subject-report"
    assert str(report["subject"]).startswith("s-")
    assert subject not in trail.read_text()  # the pseudonym only
    assert evidence["command"] == "evidence"
    assert evidence["alert"] == alert_id
    assert not (archive / "_audit").exists()  # no trail of their own
    key_file = tmp_path / "audit-key"
    key_file.write_text(KEY)
    capsys.readouterr()
    assert main(["verify-audit", str(trail), "--key-file", str(key_file)]) == 0
    assert capsys.readouterr().out == (
        "ok: 5 entries (2 archive access record(s): subject-report, evidence), chain intact "
        "(keyed)\n")


def test_a_keyed_trail_without_its_key_refuses_the_report(
        archive: Path, world_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    trail = tmp_path / "audit.jsonl"
    with AuditTrail(trail, key=KEY.encode(), fsync=False) as t:
        t.append(orjson.dumps({"alert_id": "a1"}))
    monkeypatch.delenv("WATCHDOG_AUDIT_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("WATCHDOG_AUDIT_TRAIL", str(trail))
    assert main(["subject-report", "--archive", str(archive), "--subject",
                 _subject(world_dir), "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == ""  # nothing about the person shown
    assert "cannot write the audit trail, refusing to report" in out.err
    assert len(trail.read_text().splitlines()) == 1


@pytest.mark.parametrize(("entry", "problem"), [
    ({"command": "subject-report", "by": "root", "at": "2026-12-06T00:00:00Z",
      "archive": "/a", "subject": "c-000123"}, "whose subject is not a pseudonym"),
    ({"command": "subject-report", "at": "2026-12-06T00:00:00Z", "archive": "/a",
      "subject": "s-0123456789abcdef"}, "without 'by'"),
    ({"command": "export-everything", "by": "root", "at": "2026-12-06T00:00:00Z",
      "archive": "/a"}, "of an unknown command"),
])
def test_verify_audit_checks_the_access_records(
        tmp_path: Path, entry: dict[str, str], problem: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    trail = tmp_path / "audit.jsonl"
    with AuditTrail(trail, fsync=False) as t:
        t.append(orjson.dumps({"alert_id": "a1"}))
        t.append(orjson.dumps({"kind": "archive_access", **entry}))
    assert main(["verify-audit", str(trail)]) == 1
    assert f"line 2: archive access record {problem}" in capsys.readouterr().out
