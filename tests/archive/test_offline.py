"""``watchdog archive write`` / ``verify`` / ``subject-report`` on a simulated world."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.archive.helpers import write_archive
from watchdog.archive.manifest import contents
from watchdog.archive.store import open_store
from watchdog.archive.verify import verify
from watchdog.cli import main


@pytest.fixture
def archive(world_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "archive"
    assert write_archive(world_dir, out, "--writer", "t", "--segment-rows", "5000") == 0
    return out


def _input_ids(world: Path) -> list[str]:
    return [json.loads(line)["event"]["id"] for line in
            (world / "events.jsonl").read_text().splitlines() if line.strip()]


def _archived_ids(archive: Path) -> list[str]:
    store = open_store(str(archive))
    ids: list[str] = []
    for seg in contents(store).of("events"):
        ids += pq.read_table(store.path(seg.path), columns=["id"]).column("id").to_pylist()
    return ids


def test_archive_holds_every_event_once_and_verifies(archive: Path, world_dir: Path) -> None:
    ids = _archived_ids(archive)
    assert sorted(ids) == sorted(_input_ids(world_dir))
    assert len(ids) == len(set(ids))
    report = verify(open_store(str(archive)))
    assert report.ok, report.problems
    assert report.rows > len(ids)  # records and alerts too


def test_writing_again_adds_nothing(archive: Path, world_dir: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    before = len(_archived_ids(archive))
    assert write_archive(world_dir, archive, "--writer", "t2") == 0
    assert len(_archived_ids(archive)) == before
    assert verify(open_store(str(archive))).ok


def _segments(archive: Path, dataset: str = "events") -> list[Path]:
    return sorted((archive / dataset).rglob("*.parquet"))


def _problems(archive: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["archive", "verify", str(archive)]) == 1
    return capsys.readouterr().out


def test_verify_names_a_changed_segment(archive: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    seg = _segments(archive)[1]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 1
    seg.write_bytes(bytes(data))
    out = _problems(archive, capsys)
    assert f"{seg.relative_to(archive)}: changed" in out


def test_verify_names_a_removed_segment(archive: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    seg = _segments(archive)[2]
    seg.unlink()
    assert f"{seg.relative_to(archive)}: removed" in _problems(archive, capsys)


def test_verify_names_reordered_segments(archive: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _segments(archive)[0], _segments(archive)[1]
    tmp = a.with_suffix(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    out = _problems(archive, capsys)
    assert f"{a.relative_to(archive)}: holds the bytes of {b.relative_to(archive)}" in out
    assert f"{b.relative_to(archive)}: holds the bytes of {a.relative_to(archive)}" in out


def test_verify_names_a_slipped_in_segment(archive: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    seg = _segments(archive)[0]
    extra = seg.with_name("extra.parquet")
    shutil.copy(seg, extra)
    assert f"{extra.relative_to(archive)}: recorded in no manifest" in _problems(archive, capsys)


def test_verify_names_manifest_tampering(world_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a"
    lines = (world_dir / "events.jsonl").read_text().splitlines(keepends=True)
    for i in range(3):  # three runs on three parts of the input: one entry each
        part = tmp_path / f"part{i}.jsonl"
        part.write_text("".join(lines[i::3]))
        assert main(["archive", "write", "--events", str(part), "--out", str(out),
                     "--writer", "w"]) == 0
    chain = out / "_manifest" / "w"
    entries = sorted(chain.iterdir())
    assert len(entries) == 3
    doc = json.loads(entries[1].read_text())
    doc["at"] = "2020-01-01T00:00:00Z"
    entries[1].write_text(json.dumps(doc))
    text = _problems(out, capsys)
    assert "entry 2 was changed" in text
    entries[1].unlink()
    assert "entry 2 was removed" in _problems(out, capsys)


def test_subject_report_lists_exactly_the_events_naming_the_subject(
        archive: Path, world_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = [json.loads(line) for line in (world_dir / "events.jsonl").read_text().splitlines()]
    by_subject: dict[str, list[tuple[str, str]]] = {}
    for d in docs:
        for s in d.get("data", {}).get("subject_ids", ()):
            by_subject.setdefault(s, []).append((d["@timestamp"], d["event"]["id"]))
    busiest = sorted(by_subject, key=lambda s: -len(by_subject[s]))[:3]
    for subject in [*busiest, "nobody-at-all"]:
        capsys.readouterr()
        assert main(["subject-report", "--archive", str(archive), "--subject", subject,
                     "--json"]) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert sorted(x["event_id"] for x in lines) == sorted(
            e for _t, e in by_subject.get(subject, []))
        times = [x["ts"] for x in lines]
        assert times == sorted(times)


def test_subject_report_window_and_audit(archive: Path, world_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    subject = json.loads((world_dir / "subjects.jsonl").read_text().splitlines()[0])[
        "subject_id"]
    assert main(["subject-report", "--archive", str(archive), "--subject", subject,
                 "--from", "2026-11-02", "--to", "2026-11-03"]) == 0
    out = capsys.readouterr().out
    assert "Register history:" in out
    trail = (archive / "_audit" / "access.jsonl").read_text().splitlines()
    entry = json.loads(trail[-1])["alert"]
    assert entry["command"] == "subject-report"
    assert entry["subject"].startswith("s-")
    assert subject not in trail[-1]  # the pseudonym only
    assert main(["verify-audit", str(archive / "_audit" / "access.jsonl")]) == 0


# what a command that only queries a local archive must not import: pyarrow and numpy (~0.4 s
# of its start on a loaded machine; DuckDB reads the Parquet itself), nor the daemon's parts
_NOT_FOR_A_QUERY = ("pyarrow", "numpy", "pandas", "sklearn", "skops", "scipy", "aiokafka",
                    "aiomqtt", "structlog", "prometheus_client", "watchdog.daemon",
                    "watchdog.anomaly", "watchdog.engine", "watchdog.simulate")


def test_subject_report_imports_only_what_it_uses(archive: Path, world_dir: Path,
                                                  tmp_path: Path) -> None:
    subject = json.loads((world_dir / "subjects.jsonl").read_text().splitlines()[0])[
        "subject_id"]
    code = ("import sys\n"
            "from watchdog.cli import main\n"
            f"rc = main(['subject-report', '--archive', {str(archive)!r}, '--subject', "
            f"{subject!r}, '--json'])\n"
            "print(rc, sorted(sys.modules), file=sys.stderr)\n")
    env = {**os.environ, "WATCHDOG_AUDIT_TRAIL": str(tmp_path / "access.jsonl")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True, timeout=120)
    rc, _, mods = done.stderr.strip().splitlines()[-1].partition(" ")
    assert rc == "0"
    assert done.stdout.strip()  # it did report (the subject's events)
    loaded = set(ast.literal_eval(mods))
    assert "duckdb" in loaded
    assert not [m for m in loaded for bad in _NOT_FOR_A_QUERY
                if m == bad or m.startswith(bad + ".")]


def test_bad_archive_location_is_one_line(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    assert main(["archive", "verify", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no such archive" in err


def _alerts(path: Path) -> list[dict[str, object]]:
    out = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        doc.pop("detected_at", None)
        out.append(doc)
    return sorted(out, key=lambda d: str(d["alert_id"]))


def test_replay_of_the_archive_gives_the_alerts_of_the_files(
        archive: Path, world_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "from-archive.jsonl"
    assert main(["replay", "--archive", str(archive), "--policy",
                 str(world_dir / "policy.yaml"), "--out", str(out)]) == 0
    expected = _alerts(world_dir / "alerts.jsonl")
    assert expected
    assert _alerts(out) == expected


def test_replay_archive_window_and_conflicts(archive: Path, world_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "day.jsonl"
    assert main(["replay", "--archive", str(archive), "--from", "2026-11-02", "--to",
                 "2026-11-03", "--policy", str(world_dir / "policy.yaml"),
                 "--out", str(out)]) == 0
    assert all("2026-11-02" <= str(a["ts"]) < "2026-11-03" for a in _alerts(out)
               if a["rule"] not in ("account_not_revoked", "erasure_overdue"))
    capsys.readouterr()
    assert main(["replay", "--archive", str(archive), "--events", "x.jsonl",
                 "--out", str(out)]) == 2
    assert "--archive replaces --events" in capsys.readouterr().err
