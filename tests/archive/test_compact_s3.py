"""Compaction on a real S3 protocol server (moto_server on a free 127.0.0.1 port)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.archive.helpers import archive_items, s3_keys_in_credentials
from tests.services.tansu import MotoS3
from watchdog.archive import manifest as mf
from watchdog.archive.layout import EVENTS
from watchdog.archive.store import open_store
from watchdog.archive.writer import ArchiveWriter
from watchdog.cli import main

pytestmark = pytest.mark.integration


def test_compaction_on_s3(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                          world_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s3_keys_in_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("WATCHDOG_AUDIT_TRAIL", str(tmp_path / "audit.jsonl"))
    archive = f"s3://{moto_s3.create_bucket()}/watchdog?endpoint={moto_s3.endpoint}"
    store = open_store(archive)
    items = sorted(archive_items(world_dir / "events.jsonl"), key=lambda i: i[1])
    w = ArchiveWriter(store, "daemon-a")
    for i in range(0, len(items), 500):  # live-like: many small flushes
        w.add_many(EVENTS, items[i:i + 500])
        w.flush()
    before = Counter(s.day for s in mf.contents(store).of(EVENTS))
    first = min(before)
    assert before[first] > 1
    named = Counter(s for it in items for s in it[3])
    subject = named.most_common(1)[0][0]
    capsys.readouterr()
    assert main(["archive", "compact", archive]) == 0
    assert f"events/day={first}: {before[first]} segments -> 1 (" in capsys.readouterr().out
    after = mf.contents(store)
    assert Counter(s.day for s in after.of(EVENTS))[first] == 1
    # the replaced objects are gone from the bucket, only the new one is in the day
    assert store.listdir(f"events/day={first}") == [
        s.path for s in after.of(EVENTS) if s.day == first]
    assert main(["archive", "verify", archive]) == 0
    capsys.readouterr()
    assert main(["subject-report", "--archive", archive, "--subject", subject, "--json"]) == 0
    got = sorted(json.loads(x)["event_id"] for x in capsys.readouterr().out.splitlines())
    assert got == sorted(it[0] for it in items if subject in it[3])
