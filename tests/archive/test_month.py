"""``subject-report --json`` on a simulated month lists exactly the events that name the subject,
checked against a scan of the input: the smallest organisation ``watchdog simulate`` makes (100
accounts, fewer events each) over 30 days, ~135k events in 30 day partitions."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from watchdog.alerts.pseudonym import DEMO_KEY, Pseudonymizer
from watchdog.archive.reader import ArchiveQuery, parse_time
from watchdog.archive.report import event_json, subject_report
from watchdog.archive.store import open_store
from watchdog.cli import main

pytestmark = pytest.mark.slow

Named = dict[str, list[dict[str, object]]]


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Named]:
    tmp = tmp_path_factory.mktemp("month")
    world = tmp / "world"
    subprocess.run([sys.executable, "-m", "watchdog", "simulate", "--out", str(world),
                    "--accounts", "100", "--days", "30", "--events-per-account-per-day", "8"],
                   check=True, stdout=subprocess.DEVNULL)
    archive = tmp / "archive"
    assert main(["archive", "write", "--events", str(world / "events.jsonl"), "--subjects",
                 str(world / "subjects.jsonl"), "--directory", str(world / "directory.jsonl"),
                 "--out", str(archive)]) == 0
    named: Named = {}  # the scan: subject -> the input documents that name it
    for line in (world / "events.jsonl").read_bytes().splitlines():
        doc = json.loads(line)
        for s in dict.fromkeys(doc.get("data", {}).get("subject_ids", ())):
            named.setdefault(s, []).append(doc)
    return world, archive, named


def _report(archive: Path, subject: str, tmp: Path, *window: str) -> list[dict[str, object]]:
    out = tmp / "report.jsonl"
    with out.open("w") as f:
        subprocess.run([sys.executable, "-m", "watchdog", "subject-report", "--archive",
                        str(archive), "--subject", subject, "--json", "--audit",
                        str(tmp / "audit.jsonl"), *window], check=True, stdout=f,
                       stderr=subprocess.DEVNULL)
    return [json.loads(x) for x in out.read_text().splitlines()]


def test_the_month_spans_thirty_days(month: tuple[Path, Path, Named]) -> None:
    _world, archive, named = month
    days = {str(d["@timestamp"])[:10] for docs in named.values() for d in docs}
    assert len(days) >= 30
    assert len(list((archive / "events").glob("day=*"))) >= 30


def test_the_command_lists_exactly_the_events_naming_the_subject(
        month: tuple[Path, Path, Named], tmp_path: Path) -> None:
    _world, archive, named = month
    busiest = max(named, key=lambda s: len(named[s]))
    quiet = min(named, key=lambda s: len(named[s]))
    for subject in (busiest, quiet, "nobody-named-this"):
        lines = _report(archive, subject, tmp_path)
        docs = named.get(subject, [])
        assert sorted(str(x["event_id"]) for x in lines) == sorted(
            str(d["event"]["id"]) for d in docs)  # type: ignore[index]
        assert [x["ts"] for x in lines] == sorted(str(x["ts"]) for x in lines)
        by_id = {d["event"]["id"]: d for d in docs}  # type: ignore[index]
        for x in lines:  # what the line says is what the event said
            d: dict[str, object] = by_id[x["event_id"]]
            assert x["user_id"] == d["user"]["id"]  # type: ignore[index]
            assert x["action"] == d["event"]["action"]  # type: ignore[index]
            assert x["categories"] == d["data"].get("categories", [])  # type: ignore[attr-defined]
            assert parse_time(str(x["ts"])) == parse_time(str(d["@timestamp"]))
    # a week of the month
    first, last = "2026-11-10T00:00:00Z", "2026-11-17T00:00:00Z"
    lines = _report(archive, busiest, tmp_path, "--from", first, "--to", last)
    lo, hi = parse_time(first), parse_time(last)
    expect = [d["event"]["id"] for d in named[busiest]  # type: ignore[index]
              if lo <= parse_time(str(d["@timestamp"])) < hi]
    assert expect
    assert sorted(str(x["event_id"]) for x in lines) == sorted(map(str, expect))


def test_every_sampled_subject_is_reported_exactly(month: tuple[Path, Path, Named]) -> None:
    """The query the command runs, for a sample of 200 subjects of every degree of activity
    (in process: one archive opened once)."""
    _world, archive, named = month
    subjects = sorted(named)
    sample = random.Random(14).sample(subjects, min(200, len(subjects)))
    q = ArchiveQuery(open_store(str(archive)))
    pseudonym = Pseudonymizer(DEMO_KEY)
    counts: Counter[str] = Counter()
    try:
        for s in sample:
            rep = subject_report(q, s, pseudonym(s))
            got = [event_json(e, rep.erasure_effective)["event_id"] for e in rep.events]
            assert sorted(got) == sorted(d["event"]["id"] for d in named[s]), s  # type: ignore[index]
            counts[s] = len(got)
    finally:
        q.close()
    assert max(counts.values()) > 10 * min(counts.values())  # busy and quiet subjects alike
