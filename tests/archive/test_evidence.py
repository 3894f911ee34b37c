"""``watchdog evidence``: the bundle one alert rests on, checked file by file."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.archive.helpers import write_archive
from watchdog.audit import AuditTrail
from watchdog.cli import main


@pytest.fixture(scope="module")
def archive(world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evidence") / "archive"
    assert write_archive(world_dir, out) == 0
    return out


def _alert(world: Path, rule: str) -> dict[str, object]:
    for line in (world / "alerts.jsonl").read_text().splitlines():
        doc: dict[str, object] = json.loads(line)
        if doc["rule"] == rule:
            return doc
    raise AssertionError(f"no {rule} alert in the simulated world")


def test_bundle_holds_the_cited_events_state_policy_and_audit(
        archive: Path, world_dir: Path, tmp_path: Path) -> None:
    alert = _alert(world_dir, "bulk_export")
    trail_path = tmp_path / "alerts.audit.jsonl"
    with AuditTrail(trail_path) as trail:
        for line in (world_dir / "alerts.jsonl").read_text().splitlines():
            trail.append(line.encode())
    out = tmp_path / "bundle"
    assert main(["evidence", "--archive", str(archive), str(alert["alert_id"]), "--out",
                 str(out), "--policy", str(world_dir / "policy.yaml"),
                 "--audit-trail", str(trail_path)]) == 0
    sums = dict(reversed(line.split("  ")) for line in
                (out / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {p.name for p in out.iterdir()} - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert sorted(e["event"]["id"] for e in events) == sorted(map(str, alert["event_ids"]))  # type: ignore[call-overload]
    summary = json.loads((out / "summary.json").read_text())
    subjects = {s for e in events for s in e.get("data", {}).get("subject_ids", ())}
    assert summary["subjects"]["ids"] == sorted(subjects)
    assert summary["rule"] == "bulk_export"
    directory = [json.loads(x) for x in (out / "directory.jsonl").read_text().splitlines()]
    assert directory
    assert all(r["user_id"] in summary["accounts"] for r in directory)
    at = datetime.fromisoformat(str(alert["ts"]))
    assert all(datetime.fromisoformat(r["effective"]) <= at for r in directory)
    audit = json.loads((out / "audit.json").read_text())
    assert audit["chain_ok"] is True
    assert str(alert["alert_id"]) in audit["entry"]
    assert json.loads(audit["next_entry"])["prev"] == audit["entry_sha256"]
    policy = json.loads((out / "policy.json").read_text())
    assert policy["policy_sha256"] == hashlib.sha256(
        (world_dir / "policy.yaml").read_bytes()).hexdigest()
    # the run itself is in the archive's access trail
    access = (archive / "_audit" / "access.jsonl").read_text().splitlines()
    assert json.loads(access[-1])["alert"]["alert"] == alert["alert_id"]


def test_unknown_alert_is_one_line(archive: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evidence", "--archive", str(archive), "no-such-alert", "--out",
                 str(tmp_path / "b"), "--audit", str(tmp_path / "audit.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "not in the archive" in err
