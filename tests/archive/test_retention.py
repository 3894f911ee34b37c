"""Retention: whole days dropped, the drop recorded in the manifest, verify still clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.archive.helpers import write_archive
from watchdog.archive.manifest import contents
from watchdog.archive.retention import expired_days
from watchdog.archive.store import open_store
from watchdog.archive.verify import verify
from watchdog.cli import main


def test_prune_drops_whole_old_days_and_records_it(world_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a"
    assert write_archive(world_dir, out) == 0
    store = open_store(str(out))
    before = contents(store)
    days = sorted({s.day for s in before.of("events")})
    latest = max(s.last for s in before.of("events"))
    assert len(days) >= 3
    expected = {(ds, d) for ds, d in expired_days(before, 1)}
    assert expected
    # every dropped day ends at least a day before the latest event; no day kept does
    assert all(d < latest[:10] for _ds, d in expected)
    assert main(["archive", "prune", str(out), "--retention-days", "1"]) == 0
    after = contents(store)
    assert not {(s.dataset, s.day) for s in after.segments.values()} & expected
    assert {s.day for s in after.of("events")} == {d for d in days if ("events", d)
                                                  not in expected}
    report = verify(store)
    assert report.ok, report.problems
    drop = [e for c in after.chains for e in c.entries if e["op"] == "drop"]
    assert len(drop) == 1
    assert "retention" in drop[0]["reason"]
    # nothing expired any more: a second pass drops nothing
    assert main(["archive", "prune", str(out), "--retention-days", "1"]) == 0
    assert "dropped 0 day" in capsys.readouterr().err


def test_a_dropped_segment_left_behind_is_reported(world_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "a"
    assert write_archive(world_dir, out) == 0
    store = open_store(str(out))
    victim = sorted(contents(store).of("events"), key=lambda s: s.day)[0]
    data = store.read_bytes(victim.path)
    assert main(["archive", "prune", str(out), "--retention-days", "1"]) == 0
    store.write_bytes(victim.path, data)  # e.g. object lock refused the delete
    problems = verify(store, settle_seconds=1).problems  # waited for, and still there
    assert any(f"{victim.path}: dropped by retention but still present" in p for p in problems)
