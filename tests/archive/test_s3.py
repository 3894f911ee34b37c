"""The archive on a real S3 protocol server (moto_server on a free 127.0.0.1 port)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.archive.helpers import add_segment, s3_keys_in_credentials
from tests.services.tansu import MotoS3
from watchdog.archive.store import open_store
from watchdog.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_archive(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    s3_keys_in_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("WATCHDOG_AUDIT_TRAIL", str(tmp_path / "audit.jsonl"))
    bucket = moto_s3.create_bucket()
    return f"s3://{bucket}/watchdog?endpoint={moto_s3.endpoint}"


def test_write_verify_report_and_tamper_on_s3(s3_archive: str, world_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archive", "write", "--events", str(world_dir / "events.jsonl"),
                 "--subjects", str(world_dir / "subjects.jsonl"), "--out", s3_archive]) == 0
    assert main(["archive", "verify", s3_archive]) == 0
    docs = [json.loads(x) for x in (world_dir / "events.jsonl").read_text().splitlines()]
    subject = next(s for d in docs for s in d.get("data", {}).get("subject_ids", ()))
    expected = sorted(d["event"]["id"] for d in docs
                      if subject in d.get("data", {}).get("subject_ids", ()))
    capsys.readouterr()
    assert main(["subject-report", "--archive", s3_archive, "--subject", subject,
                 "--json"]) == 0
    got = sorted(json.loads(x)["event_id"] for x in capsys.readouterr().out.splitlines())
    assert got == expected
    store = open_store(s3_archive)
    seg = store.listdir("events", recursive=True)[0]
    data = bytearray(store.read_bytes(seg))
    data[100] ^= 0xFF
    store.write_bytes(seg, bytes(data))
    capsys.readouterr()
    assert main(["archive", "verify", s3_archive]) == 1
    assert f"segment {seg}: changed" in capsys.readouterr().out


def test_unknown_s3_option_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archive", "verify", "s3://b/p?access_key=x"]) == 2
    assert "unknown option 'access_key'" in capsys.readouterr().err


def test_a_segment_of_another_format_is_refused_by_name_on_s3(
        s3_archive: str, world_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["archive", "write", "--events", str(world_dir / "events.jsonl"),
                 "--out", s3_archive]) == 0
    doc = json.loads((world_dir / "events.jsonl").read_text().splitlines()[0])
    doc["event"]["id"] = "hand-1"
    path = add_segment(open_store(s3_archive), [json.dumps(doc).encode()], b"2",
                       subject_ids=False)
    capsys.readouterr()
    assert main(["subject-report", "--archive", s3_archive, "--subject", "s", "--json"]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.splitlines()[-1] == (
        f"watchdog: error: {s3_archive}: segment {path}: format '2', this watchdog reads "
        "formats 1 and 3 only (written by a newer watchdog?)")
